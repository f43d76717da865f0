"""PyTorch's nn.RNN tests from its test/test_nn.py, run on torch.nn.RNN and on ours.

Each test below re-states one of PyTorch's checks (its name is in the docstring) and runs it on
both classes: torch.nn.RNN passing it proves the port, ours passing it is the claim. The dropout
tests are decorated "cuDNN only" in PyTorch, but each has a CPU half, which is what runs here.

Left out, each for its reason:
- the cuDNN comparisons and device checks (test_RNN_cpu_vs_cudnn_*, test_cudnn_weight_format,
  test_cudnn_weight_tying, test_cudnn_rnn_dropout_states_device, test_rnn_check_device): CUDA;
- the RNNCell tests (test_RNN_cell*): another module;
- the tests that build only LSTM or GRU (weight norm, gradgrad, projections, packed sequences):
  tests/test_rnn.py covers weight norm, second-order gradients and the proj_size refusal on ours.
"""

import io

import pytest
import torch

from rnn_demo.rnn import RNN

IMPLEMENTATIONS = {"torch.nn.RNN": torch.nn.RNN, "rnn_demo.rnn.RNN": RNN}
implementations = pytest.mark.parametrize("cls", IMPLEMENTATIONS.values(), ids=IMPLEMENTATIONS.keys())


def equal(a, b):
    """PyTorch's assertEqual for these tests: equal to the dtype's default tolerance."""
    return torch.allclose(
        a, b, rtol=1.3e-6 if a.dtype == torch.float32 else 1e-7, atol=1e-5 if a.dtype == torch.float32 else 1e-7
    )


@implementations
def test_RNN_nonlinearity(cls):
    assert cls(1, 10).nonlinearity == "tanh"
    assert cls(1, 10, nonlinearity="relu").nonlinearity == "relu"
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        cls(1, 10, nonlinearity="garbage")


@implementations
def test_RNN_nonlinearity_passed_as_arg(cls):
    assert cls(2, 3, 1, "relu").nonlinearity == "relu"


@implementations
@pytest.mark.parametrize(
    "input_shape,hidden_shape",
    [
        ((6, 7, 3), (2, 4, 5)),  # the input's batch differs from the state's
        ((6, 4, 3), (2, 7, 5)),  # the state's batch differs from the input's
        ((6, 4, 7), (2, 4, 5)),  # wrong input features
        ((6, 4, 3), (2, 4, 7)),  # wrong hidden size
        ((6, 4, 3), (7, 4, 5)),  # wrong number of layers
    ],
)
def test_rnn_args_check(cls, input_shape, hidden_shape):
    with pytest.raises(RuntimeError):
        cls(3, 5, 2)(torch.randn(input_shape), torch.randn(hidden_shape))


@implementations
def test_cudnn_forward_exception(cls):
    # No cuDNN involved: the CPU path's messages for a wrong state and a wrong input width.
    rnn = cls(10, 20, batch_first=True)
    with pytest.raises(RuntimeError, match="Expected hidden.*size.*got"):
        rnn(torch.randn(2, 3, 10), torch.zeros(1, 2, 19))
    with pytest.raises(RuntimeError, match=r"input\.size\(-1\) must be equal to input_size"):
        rnn(torch.randn(2, 3, 3))


@implementations
def test_rnn_initial_hidden_state(cls):
    rnn = cls(30, 20, 2)
    input = torch.randn(10, 32, 30)
    given = rnn(input, torch.zeros(2, 32, 20))
    omitted = rnn(input)
    assert equal(given[0], omitted[0]) and equal(given[1], omitted[1])


@implementations
def test_RNN_input_size_zero(cls):
    rnn = cls(input_size=3, hidden_size=4)
    output, _ = rnn(torch.zeros(5, 0, 3))
    assert output.shape == (5, 0, 4)
    output.sum().backward()


@implementations
def test_error_RNN_seq_len_zero(cls):
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0 in RNN"):
        cls(5, 6)(torch.ones(0, 10, 5))


@implementations
def test_projections_errors_on_gru_and_rnn(cls):
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
        cls(30, 20, 2, proj_size=10)


@implementations
def test_rnn_retain_variables(cls):
    rnn = cls(10, 20, num_layers=2).double()
    input = torch.randn(5, 6, 10, dtype=torch.float64, requires_grad=True)
    output = rnn(input)
    output[0].sum().backward(retain_graph=True)
    first = [input.grad.clone()] + [p.grad.clone() for p in rnn.parameters()]
    for _ in range(4):
        rnn.zero_grad()
        input.grad.zero_()
        output[0].sum().backward(retain_graph=True)
        again = [input.grad] + [p.grad for p in rnn.parameters()]
        assert all(equal(a, b) for a, b in zip(first, again, strict=True))


@implementations
@pytest.mark.parametrize("p", [0, 0.276, 0.731, 1])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_RNN_dropout(cls, p, train):
    # All weights 1, relu: layer 0 gives 10 in each of 1,000 units; dropout between the layers
    # keeps some of them, scaled by 1/(1-p); layer 1 sums them, so (1-p) v is a multiple of 10.
    rnn = cls(10, 1000, 2, bias=False, dropout=p, nonlinearity="relu").double()
    rnn.train(train)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"):
            getattr(rnn, name).fill_(1)
    output, hy = rnn(torch.ones(1, 1, 10, dtype=torch.float64), torch.zeros(2, 1, 1000, dtype=torch.float64))
    assert output.min() == output.max()
    value = output[0][0][0].item()
    if p == 0 or not train:
        assert value == 10000
    elif p == 1:
        assert value == 0
    else:
        assert 8000 < value < 12000
        remainder = (value * (1 - p)) % 10
        assert min(remainder, 10 - remainder) < 1e-2
    assert hy[0].min() == hy[0].max() and hy[1].min() == hy[1].max()
    assert hy[0][0][0].item() == 10 and hy[1][0][0].item() == value


@implementations
@pytest.mark.parametrize("p", [0, 0.1234])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_RNN_dropout_state(cls, p, train):
    rnn = cls(100, 100, 2, bias=False, dropout=p, nonlinearity="relu")
    rnn.train(train)
    input, hx = torch.rand(1, 1, 100), torch.rand(2, 1, 100)
    out1, hy1 = rnn(input, hx)
    out2, hy2 = rnn(input, hx)
    buffer = io.BytesIO()
    torch.save(rnn, buffer)
    buffer.seek(0)
    copy = torch.load(buffer, weights_only=False)
    copy.flatten_parameters()
    out3, hy3 = copy(input, hx)
    if p == 0 or not train:
        assert equal(out1, out2) and equal(out1, out3) and equal(hy1, hy2) and equal(hy1, hy3)
    else:
        assert not equal(out1, out2) and not equal(out1, out3)
        assert not equal(hy1, hy2) and not equal(hy1, hy3)


@implementations
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_RNN_change_dropout(cls, train):
    # Dropout is read at every call: changing the attribute changes the next forward pass.
    rnn = cls(100, 100, 2, dropout=0, nonlinearity="relu").double()
    rnn.train(train)
    input = torch.rand(3, 2, 100, dtype=torch.float64)
    previous = None
    for p in (0, 0.5, 0, 0.7, 0.2, 1, 0.2, 0):
        rnn.dropout = p
        out1, hy1 = rnn(input)
        out2, hy2 = rnn(input)
        if p in (0, 1) or not train:
            assert equal(out1, out2) and equal(hy1, hy2)
        else:
            assert not equal(out1, out2) and not equal(hy1, hy2)
        if previous is not None:
            if not train:
                assert equal(out1, previous) and equal(out2, previous)
            else:
                assert not equal(out1, previous) and not equal(out2, previous)
        previous = out1
