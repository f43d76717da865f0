"""The hand-written RNN is torch.nn.RNN: same parameters, same init, same outputs and gradients."""

import itertools

import pytest
import torch

from rnn_demo.model.rnn import RNN, RNNShapeError

INPUT, HIDDEN, BATCH, STEPS = 5, 7, 3, 6


def twins(num_layers=1, nonlinearity="tanh", bias=True, batch_first=False, dtype=torch.float64):
    ours = RNN(INPUT, HIDDEN, num_layers, nonlinearity=nonlinearity, bias=bias, batch_first=batch_first).to(dtype)
    theirs = torch.nn.RNN(INPUT, HIDDEN, num_layers, nonlinearity=nonlinearity, bias=bias, batch_first=batch_first)
    theirs = theirs.to(dtype)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return ours, theirs


def run_and_grad(module, input, h_0, grad_output, grad_h_n):
    """Outputs and the gradients of <output, grad_output> + <h_n, grad_h_n> w.r.t. input, h_0, parameters."""
    input = input.clone().requires_grad_()
    h_0 = h_0.clone().requires_grad_()
    output, h_n = module(input, h_0)
    objective = (output * grad_output).sum() + (h_n * grad_h_n).sum()
    grads = torch.autograd.grad(objective, [input, h_0, *module.parameters()])
    return output.detach(), h_n.detach(), grads


@pytest.mark.parametrize(
    "num_layers,nonlinearity,bias,batch_first",
    list(itertools.product([1, 2, 3], ["tanh", "relu"], [True, False], [False, True])),
)
def test_outputs_and_all_gradients_match_torch(num_layers, nonlinearity, bias, batch_first):
    torch.manual_seed(num_layers)
    ours, theirs = twins(num_layers, nonlinearity, bias, batch_first)
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    input = torch.randn(shape, dtype=torch.float64)
    h_0 = torch.randn(num_layers, BATCH, HIDDEN, dtype=torch.float64)
    grad_output = torch.randn(shape[:2] + (HIDDEN,), dtype=torch.float64)
    grad_h_n = torch.randn(num_layers, BATCH, HIDDEN, dtype=torch.float64)

    our_output, our_h_n, our_grads = run_and_grad(ours, input, h_0, grad_output, grad_h_n)
    their_output, their_h_n, their_grads = run_and_grad(theirs, input, h_0, grad_output, grad_h_n)

    assert our_output.shape == their_output.shape and our_h_n.shape == their_h_n.shape
    assert (our_output - their_output).abs().max() <= 1e-9
    assert (our_h_n - their_h_n).abs().max() <= 1e-9
    names = ["input", "h_0"] + [name for name, _ in ours.named_parameters()]
    for name, ours_grad, theirs_grad in zip(names, our_grads, their_grads, strict=True):
        assert (ours_grad - theirs_grad).abs().max() <= 1e-9, name


def test_hand_written_backward_passes_numerical_gradcheck():
    torch.manual_seed(0)
    rnn = RNN(3, 4, num_layers=2).double()
    names = [name for name, _ in rnn.named_parameters()]

    def run(input, h_0, *parameters):
        return torch.func.functional_call(rnn, dict(zip(names, parameters)), (input, h_0))

    input = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    h_0 = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)
    parameters = [p.detach().clone().requires_grad_() for p in rnn.parameters()]
    assert torch.autograd.gradcheck(run, (input, h_0, *parameters))


@pytest.mark.parametrize(
    "num_layers,nonlinearity,bias,batch_first,batched",
    [
        *itertools.product([1, 2], ["tanh", "relu"], [True, False], [False, True], [True]),
        (1, "tanh", True, False, False),
        (2, "relu", False, False, False),
    ],
)
def test_second_order_gradients_pass_gradgradcheck(num_layers, nonlinearity, bias, batch_first, batched):
    # A gradient of a gradient (a gradient penalty, a Hessian-vector product) goes through the
    # hand-written backward, which must be differentiable itself, or the result is silently wrong.
    torch.manual_seed(1)
    rnn = RNN(3, 4, num_layers=num_layers, nonlinearity=nonlinearity, bias=bias, batch_first=batch_first).double()
    names = [name for name, _ in rnn.named_parameters()]

    def run(input, h_0, *parameters):
        return torch.func.functional_call(rnn, dict(zip(names, parameters)), (input, h_0))

    shape = ((2, 5, 3) if batch_first else (5, 2, 3)) if batched else (5, 3)
    input = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    h_0 = torch.randn((num_layers, 2, 4) if batched else (num_layers, 4), dtype=torch.float64, requires_grad=True)
    parameters = [p.detach().clone().requires_grad_() for p in rnn.parameters()]
    assert torch.autograd.gradgradcheck(run, (input, h_0, *parameters))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_a_gradient_penalty_matches_torch(nonlinearity):
    # The gradient of |d loss / d input|^2 with respect to the input and every weight.
    torch.manual_seed(2)
    ours, theirs = twins(2, nonlinearity)
    input = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    results = []
    for module in (ours, theirs):
        x = input.clone().requires_grad_()
        output, h_n = module(x)
        (grad_input,) = torch.autograd.grad(output.pow(2).sum() + h_n.sum(), x, create_graph=True)
        penalty = grad_input.pow(2).sum()
        results.append(torch.autograd.grad(penalty, [x, *module.parameters()], allow_unused=True))
    names = ["input"] + [name for name, _ in ours.named_parameters()]
    for name, ours_grad, theirs_grad in zip(names, *results, strict=True):
        assert ours_grad is not None, name
        assert (ours_grad - theirs_grad).abs().max() <= 1e-9, name


def test_same_parameter_names_shapes_and_initial_values_as_torch():
    torch.manual_seed(123)
    ours = RNN(20, 50, 2)
    torch.manual_seed(123)
    theirs = torch.nn.RNN(20, 50, 2)
    our_state, their_state = ours.state_dict(), theirs.state_dict()
    assert list(our_state) == list(their_state) == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
    ]
    for name in our_state:
        assert torch.equal(our_state[name], their_state[name]), name
    bound = 1 / 50**0.5
    assert all(p.abs().max() <= bound for p in ours.parameters())
    # and torch's weights load into ours, strictly
    ours.load_state_dict(theirs.state_dict(), strict=True)


def test_no_bias_means_no_bias_parameters():
    assert [name for name, _ in RNN(4, 3, 2, bias=False).named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1",
    ]


def test_the_seed_example_shapes():
    """The source text's call: RNN(20, 50, 2) on (100, 32, 20) with h_0 (2, 32, 50)."""
    rnn = RNN(20, 50, 2)
    output, h_n = rnn(torch.randn(100, 32, 20), torch.randn(2, 32, 50))
    assert output.shape == (100, 32, 50)
    assert h_n.shape == (2, 32, 50)


def test_hidden_state_is_a_state_not_a_weight_and_is_fed_back():
    """The source text's step() returned W_hh as the 'hidden' state and never fed the state back."""
    torch.manual_seed(0)
    rnn = RNN(INPUT, HIDDEN, num_layers=2)
    input = torch.randn(STEPS, BATCH, INPUT)
    output, h_n = rnn(input)
    assert h_n.shape == (2, BATCH, HIDDEN)
    assert not any(h_n.shape == p.shape for p in rnn.parameters())
    assert torch.equal(h_n[-1], output[-1])  # the top layer's last state is the last output
    # Feeding the state back: the same input at the last step gives a different output
    # when what came before differs, which is only possible through h_(t-1).
    other = input.clone()
    other[0] += 1.0
    assert not torch.allclose(rnn(other)[0][-1], output[-1])
    # ... and h_0 matters
    assert not torch.allclose(rnn(input, torch.ones(2, BATCH, HIDDEN))[0], output)


@pytest.mark.parametrize("batch_first", [False, True])
def test_running_in_two_calls_equals_one_call(batch_first):
    torch.manual_seed(1)
    rnn = RNN(INPUT, HIDDEN, num_layers=3, batch_first=batch_first).double()
    time_dim = 1 if batch_first else 0
    input = torch.randn((BATCH, 10, INPUT) if batch_first else (10, BATCH, INPUT), dtype=torch.float64)
    whole, h_whole = rnn(input)
    first, h_mid = rnn(input.narrow(time_dim, 0, 4))
    second, h_end = rnn(input.narrow(time_dim, 4, 6), h_mid)
    assert torch.allclose(torch.cat([first, second], dim=time_dim), whole, atol=1e-12)
    assert torch.allclose(h_end, h_whole, atol=1e-12)


def test_unbatched_input_matches_torch():
    ours, theirs = twins(num_layers=2)
    input = torch.randn(STEPS, INPUT, dtype=torch.float64)
    h_0 = torch.randn(2, HIDDEN, dtype=torch.float64)
    our_output, our_h_n = ours(input, h_0)
    their_output, their_h_n = theirs(input, h_0)
    assert our_output.shape == (STEPS, HIDDEN) and our_h_n.shape == (2, HIDDEN)
    assert torch.allclose(our_output, their_output, atol=1e-12)
    assert torch.allclose(our_h_n, their_h_n, atol=1e-12)


def test_default_h0_is_zeros_of_the_input_dtype():
    ours, _ = twins(num_layers=2)
    input = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    output, h_n = ours(input)
    assert h_n.dtype == torch.float64
    assert torch.equal(output, ours(input, torch.zeros(2, BATCH, HIDDEN, dtype=torch.float64))[0])


def test_float32_matches_torch_closely():
    torch.manual_seed(0)
    ours, theirs = twins(num_layers=2, dtype=torch.float32)
    input = torch.randn(50, 8, INPUT)
    assert torch.allclose(ours(input)[0], theirs(input)[0], atol=1e-5)


def test_dropout_between_layers_only_in_training_mode():
    torch.manual_seed(0)
    rnn = RNN(INPUT, HIDDEN, num_layers=2, dropout=0.5)
    input = torch.randn(STEPS, BATCH, INPUT)
    rnn.eval()
    assert torch.equal(rnn(input)[0], rnn(input)[0])
    rnn.train()
    assert not torch.equal(rnn(input)[0], rnn(input)[0])
    # dropout is never applied to the last layer's output: with one layer training is deterministic
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        single = RNN(INPUT, HIDDEN, num_layers=1, dropout=0.5).train()
    assert torch.equal(single(input)[0], single(input)[0])


@pytest.mark.parametrize(
    "input,h_0,message",
    [
        (torch.randn(2, 3, 4, 5), None, "2D or 3D"),
        (torch.randn(6, 3, 4), None, "input_size"),
        (torch.randn(6, 3, INPUT), torch.randn(1, 3, HIDDEN), "hidden size"),
        (torch.randn(6, 3, INPUT), torch.randn(2, 4, HIDDEN), "hidden size"),
        (torch.randn(6, 3, INPUT), torch.randn(2, HIDDEN), "3-D"),
        (torch.randn(6, INPUT), torch.randn(2, 3, HIDDEN), "2-D"),
        (torch.randn(0, 3, INPUT), None, "sequence length"),
    ],
)
def test_wrong_shapes_give_clear_errors(input, h_0, message):
    rnn = RNN(INPUT, HIDDEN, num_layers=2)
    with pytest.raises(RNNShapeError, match=message) as caught:
        rnn(input, h_0)
    # both the Python convention and what torch.nn.RNN raises
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, RuntimeError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_size": 0, "hidden_size": 3},
        {"input_size": 3, "hidden_size": -1},
        {"input_size": 3, "hidden_size": 3, "num_layers": 0},
        {"input_size": 3, "hidden_size": 3, "nonlinearity": "sigmoid"},
        {"input_size": 3, "hidden_size": 3, "dropout": 1.5},
    ],
)
def test_bad_constructor_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        RNN(**kwargs)


def test_an_empty_batch_gives_empty_outputs_like_torch():
    ours, theirs = twins(num_layers=2)
    input = torch.randn(STEPS, 0, INPUT, dtype=torch.float64)
    assert ours(input)[0].shape == theirs(input)[0].shape == (STEPS, 0, HIDDEN)
    assert ours(input)[1].shape == theirs(input)[1].shape == (2, 0, HIDDEN)


def test_non_tensor_input_is_refused():
    with pytest.raises(TypeError, match="torch.Tensor"):
        RNN(INPUT, HIDDEN)([[1.0] * INPUT])


# ---- as torch.nn.RNN refuses: the same exception types and messages ------------------------------


def outcome(make):
    """What ``make()`` does: "ok", or the exception's type name and message."""
    try:
        make()
    except Exception as error:  # noqa: BLE001 - the outcome is what is compared
        return f"{type(error).__name__}: {error}"
    return "ok"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_size": 4, "hidden_size": 4.0},
        {"input_size": 4, "hidden_size": "4"},
        {"input_size": 4.0, "hidden_size": 4},
        {"input_size": 4, "hidden_size": 4, "bias": 0},
        {"input_size": 4, "hidden_size": 4, "batch_first": "False"},
        {"input_size": 0, "hidden_size": 4},
        {"input_size": 4, "hidden_size": 0},
        {"input_size": 4, "hidden_size": 4, "num_layers": 0},
        {"input_size": 4, "hidden_size": 4, "nonlinearity": "sigmoid"},
        {"input_size": 4, "hidden_size": 4, "dropout": 1.5},
        {"input_size": 4, "hidden_size": 4, "dropout": True},
        {"input_size": 4, "hidden_size": 4, "proj_size": 0},
        {"input_size": 4, "hidden_size": 4, "proj_size": 2},
        {"input_size": 4, "hidden_size": 4, "bidirectional": False, "num_layers": 2},
        {"input_size": 4, "hidden_size": 4, "num_layers": 2.0},
        {"input_size": 4, "hidden_size": 4, "num_layers": 1.5},
        {"input_size": 4, "hidden_size": 4, "num_layers": float("nan")},
        {"input_size": 4, "hidden_size": 4, "num_layers": -1.0},
        {"input_size": 4, "hidden_size": 4, "num_layers": "2"},
        {"input_size": 4, "hidden_size": 4, "num_layers": 2.0, "dropout": 2},
    ],
)
def test_constructor_arguments_are_refused_as_torch_refuses_them(kwargs):
    assert outcome(lambda: RNN(**kwargs)) == outcome(lambda: torch.nn.RNN(**kwargs))


def test_a_float_num_layers_raises_torchs_own_exception_and_message():
    with pytest.raises(TypeError) as theirs:
        torch.nn.RNN(4, 4, num_layers=2.0)
    with pytest.raises(TypeError) as ours:
        RNN(4, 4, num_layers=2.0)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)
    assert str(ours.value) == "'float' object cannot be interpreted as an integer"


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_mode_bidirectional_and_proj_size_are_torchs(nonlinearity):
    ours, theirs = twins(num_layers=2, nonlinearity=nonlinearity)
    for name in ("mode", "bidirectional", "proj_size", "nonlinearity", "num_layers", "dropout"):
        assert getattr(ours, name) == getattr(theirs, name), name
        assert type(getattr(ours, name)) is type(getattr(theirs, name)), name
    assert ours.mode == {"tanh": "RNN_TANH", "relu": "RNN_RELU"}[nonlinearity]


def test_dropout_with_one_layer_warns_as_torch_does():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1") as ours:
        RNN(4, 4, dropout=0.5)
    with pytest.warns(UserWarning) as theirs:
        torch.nn.RNN(4, 4, dropout=0.5)
    assert str(ours[0].message) == str(theirs[0].message)


def test_bidirectional_is_refused_clearly():
    with pytest.raises(ValueError, match="bidirectional=True is not supported"):
        RNN(4, 4, bidirectional=True)


@pytest.mark.parametrize(
    "input,hx",
    [
        (torch.randn(6, 3, INPUT), torch.randn(1, 3, HIDDEN)),
        (torch.randn(6, 3, INPUT), torch.randn(2, 4, HIDDEN)),
        (torch.randn(6, 3, INPUT), torch.randn(2, HIDDEN)),
        (torch.randn(6, INPUT), torch.randn(2, 3, HIDDEN)),
        (torch.randn(6, 3, INPUT + 1), None),
        (torch.randn(6, 3, INPUT, dtype=torch.float64), None),
    ],
)
def test_bad_calls_give_torchs_messages(input, hx):
    ours, theirs = RNN(INPUT, HIDDEN, num_layers=2), torch.nn.RNN(INPUT, HIDDEN, num_layers=2)
    assert outcome(lambda: ours(input, hx)).split(": ", 1)[1] == outcome(lambda: theirs(input, hx)).split(": ", 1)[1]


def test_the_initial_state_is_hx_as_in_torch_and_h_0_still_works():
    ours, theirs = twins(num_layers=2)
    input = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    hx = torch.randn(2, BATCH, HIDDEN, dtype=torch.float64)
    expected = theirs(input, hx=hx)
    for output, h_n in (ours(input, hx=hx), ours(input, h_0=hx), ours(input, hx)):
        assert torch.allclose(output, expected[0], atol=1e-12) and torch.allclose(h_n, expected[1], atol=1e-12)
    with pytest.raises(TypeError, match="twice"):
        ours(input, hx, h_0=hx)


@pytest.mark.parametrize("bias", [True, False])
def test_weight_lists_and_flatten_parameters_as_in_torch(bias):
    ours, theirs = twins(num_layers=2, bias=bias)
    assert ours._flat_weights_names == theirs._flat_weights_names
    assert [[tuple(w.shape) for w in layer] for layer in ours.all_weights] == [
        [tuple(w.shape) for w in layer] for layer in theirs.all_weights
    ]
    assert all(a is b for a, b in zip(ours._flat_weights, ours.parameters(), strict=True))
    ours.flatten_parameters()  # a no-op, as code written for torch.nn.RNN calls it
    input = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    assert torch.allclose(ours(input)[0], theirs(input)[0], atol=1e-12)


def _functional(module):
    """module as a function of (parameters, input): the form torch.func transforms take."""
    return lambda parameters, input: torch.func.functional_call(module, parameters, (input,))


TRANSFORMS = {
    # Each maps (module, input) to a tensor computed by one functional transform.
    "grad": lambda m, x: torch.func.grad(lambda p, x: _functional(m)(p, x)[0].sum())(dict(m.named_parameters()), x),
    "jacrev": lambda m, x: torch.func.jacrev(lambda x: m(x)[1])(x),
    "jacfwd": lambda m, x: torch.func.jacfwd(lambda x: m(x)[1])(x),
    "jvp": lambda m, x: torch.func.jvp(lambda x: m(x)[0], (x,), (torch.ones_like(x),)),
    "hessian": lambda m, x: torch.func.hessian(lambda x: m(x)[0].sum())(x[:2]),
}


@pytest.mark.parametrize("transform", TRANSFORMS.values(), ids=TRANSFORMS.keys())
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_functional_transforms_give_torchs_results(transform, batched):
    # Under torch.func the time loop is plain autograd operations (the hand-written backward has
    # no forward-mode or vmap rule), so every transform composes as it does with torch.nn.RNN.
    torch.manual_seed(3)
    ours, theirs = twins(num_layers=2, nonlinearity="tanh")
    input = torch.randn((STEPS, BATCH, INPUT) if batched else (STEPS, INPUT), dtype=torch.float64)
    torch.testing.assert_close(transform(ours, input), transform(theirs, input), atol=1e-10, rtol=0)


def test_forward_mode_ad_and_batched_gradients_pass_gradcheck():
    torch.manual_seed(4)
    rnn = RNN(3, 4, num_layers=2, nonlinearity="relu").double()
    names = [name for name, _ in rnn.named_parameters()]

    def run(input, *parameters):
        return torch.func.functional_call(rnn, dict(zip(names, parameters)), (input,))

    input = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    parameters = [p.detach().clone().requires_grad_() for p in rnn.parameters()]
    assert torch.autograd.gradcheck(run, (input, *parameters), check_forward_ad=True, check_batched_grad=True)
    assert torch.autograd.gradgradcheck(run, (input, *parameters), check_batched_grad=True)


def test_the_dual_tensors_of_forward_mode_ad_give_torchs_tangents():
    from torch.autograd import forward_ad

    torch.manual_seed(5)
    ours, theirs = twins(num_layers=2)
    input, tangent = torch.randn(2, STEPS, BATCH, INPUT, dtype=torch.float64)
    tangents = []
    for module in (ours, theirs):
        with forward_ad.dual_level():
            output, _ = module(forward_ad.make_dual(input, tangent))
            tangents.append(forward_ad.unpack_dual(output).tangent)
    assert tangents[0] is not None
    torch.testing.assert_close(tangents[0], tangents[1], atol=1e-10, rtol=0)


@pytest.mark.parametrize("style", ["weight_norm", "parametrizations.weight_norm"])
def test_weight_norm_on_the_recurrent_weight_trains_as_on_torchs(style):
    apply = torch.nn.utils.weight_norm if style == "weight_norm" else torch.nn.utils.parametrizations.weight_norm
    torch.manual_seed(6)
    pair = [apply(module, "weight_hh_l0") for module in twins(num_layers=2)]
    input = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    results = []
    for module in pair:
        output, h_n = module(input)
        (output.pow(2).sum() + h_n.sum()).backward()
        results.append((output, [p.grad for p in module.parameters()]))
        computed = module.weight_hh_l0
        assert module._flat_weights[1] is not None
        torch.testing.assert_close(module._flat_weights[1], computed)
        torch.testing.assert_close(module.all_weights[0][1], computed)
    assert [n for n, _ in pair[0].named_parameters()] == [n for n, _ in pair[1].named_parameters()]
    torch.testing.assert_close(results[0], results[1], atol=1e-10, rtol=0)


@pytest.mark.parametrize("inner", ["forward", "grad"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_vmap_equals_a_loop_over_torchs_rnn(inner, batched):
    # torch.nn.RNN itself has no vmap rule ("Batching rule not implemented for aten::rnn_tanh"),
    # so the reference is a Python loop over the mapped dimension.
    torch.manual_seed(7)
    ours, theirs = twins(num_layers=2)
    inputs = torch.randn((4, STEPS, BATCH, INPUT) if batched else (4, STEPS, INPUT), dtype=torch.float64)

    def function(module):
        if inner == "forward":
            return lambda x: module(x)[0]
        return torch.func.grad(lambda x: module(x)[0].pow(2).sum())

    expected = torch.stack([function(theirs)(x) for x in inputs])
    torch.testing.assert_close(torch.func.vmap(function(ours))(inputs), expected, atol=1e-10, rtol=0)


def test_packed_sequences_are_refused_clearly():
    packed = torch.nn.utils.rnn.pack_sequence([torch.randn(4, INPUT), torch.randn(2, INPUT)])
    with pytest.raises(TypeError, match="does not accept PackedSequence"):
        RNN(INPUT, HIDDEN)(packed)


def test_torch_jit_trace_gives_the_same_outputs():
    torch.manual_seed(8)
    ours, theirs = twins(num_layers=2)
    input = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    traced = torch.jit.trace(ours, input)
    # The time loop is one traced node (the custom autograd.Function), so other lengths run too.
    for these in (input, torch.randn(STEPS + 3, BATCH + 1, INPUT, dtype=torch.float64)):
        torch.testing.assert_close(traced(these), theirs(these), atol=1e-12, rtol=0)


def test_torch_jit_script_is_not_supported():
    # TorchScript cannot compile a custom autograd.Function (torch deprecates torch.jit.script).
    with pytest.raises(Exception, match="keyword-only arguments|autograd.Function|not supported"):
        torch.jit.script(RNN(INPUT, HIDDEN))


@pytest.mark.slow
def test_torch_compile_gives_torchs_outputs_and_gradients():
    torch.manual_seed(9)
    ours, theirs = twins(num_layers=2, nonlinearity="relu")
    input = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    compiled = torch.compile(ours)
    results = []
    for module in (compiled, theirs):
        output, h_n = module(input)
        (output.pow(2).sum() + h_n.sum()).backward()
        results.append((output, h_n, [p.grad for p in module.parameters()]))
    torch.testing.assert_close(results[0], results[1], atol=1e-10, rtol=0)
