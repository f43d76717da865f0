"""The Elman RNN written from its formula, a drop-in twin of ``torch.nn.RNN``.

Each layer computes, for every time step t,

    h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)        (or relu instead of tanh)

where x_t is the layer's input at step t (the previous layer's h_t for layers above the
first) and h_(t-1) is the layer's own state from the step before. The state is what flows
from one step to the next: it is fed back at every step and returned as ``h_n`` so a
sequence can be continued in a later call.

Two things make it fast on a CPU without changing the maths:

* the input part ``W_ih x_t + b_ih + b_hh`` does not depend on the state, so it is computed
  for all time steps in one matrix multiply before the time loop;
* the time loop (one ``addmm`` and one activation per step) runs inside a custom autograd
  function whose backward pass is written out by hand: one matrix multiply per step going
  backwards, and the weight gradient ``dW_hh`` as one matrix multiply over all steps at the
  end. Autograd would otherwise record and replay several small nodes per step.

Under a functional transform (``torch.func.grad``, ``vmap``, ``jvp``, ``jacrev``, ``hessian``) or
forward-mode AD (``torch.autograd.forward_ad``), the time loop is plain autograd operations
instead, so every transform composes with it exactly as with torch's own operators; see
:func:`_transform_active`.
"""

from __future__ import annotations

import math
import numbers
import operator
import warnings

import torch
from torch import nn
from torch.autograd import forward_ad
from torch.nn import functional as F

NONLINEARITIES = ("tanh", "relu")


class RNNShapeError(ValueError, RuntimeError):
    """A tensor of the wrong shape was passed to :class:`RNN`.

    It is both a ``ValueError`` (the Python convention) and a ``RuntimeError`` (what
    ``torch.nn.RNN`` raises), so code written for either keeps working.
    """


def _transform_active() -> bool:
    """Whether a functorch transform (grad, vmap, jvp, ...) or a forward-mode AD level is active.

    The hand-written backward of :class:`_Recurrence` is a reverse-mode rule only: it has no
    forward-mode (jvp) rule and its in-place form has no vmap rule. Where either could be asked
    for, the layer runs its time loop as ordinary autograd operations (:func:`_plain_recurrence`),
    which every transform understands, rather than give an error or a wrong derivative.
    """
    return torch._C._functorch.peek_interpreter_stack() is not None or forward_ad._current_level >= 0


def _plain_recurrence(pre, h0, weight_hh, nonlinearity):
    """The same loop as :class:`_Recurrence`, recorded by autograd step by step: (T, B, H) states."""
    activate = torch.tanh if nonlinearity == "tanh" else torch.relu
    h = h0
    states = []
    for t in range(pre.shape[0]):
        h = activate(torch.addmm(pre[t], h, weight_hh.t()))  # (B, H)
        states.append(h)
    return torch.stack(states)


class _Recurrence(torch.autograd.Function):
    """The time loop of one layer: h_t = act(pre_t + h_(t-1) W_hh^T), for t = 0..T-1.

    ``pre`` (T, B, H) already holds W_ih x_t + b_ih + b_hh for every step.
    Returns all states (T, B, H); h_n is the last of them.
    """

    @staticmethod
    def forward(ctx, pre, h0, weight_hh, nonlinearity):
        steps = pre.shape[0]
        states = torch.empty_like(pre)  # (T, B, H)
        weight_hh_t = weight_hh.t()
        activate_ = torch.Tensor.tanh_ if nonlinearity == "tanh" else torch.Tensor.relu_
        h = h0
        for t in range(steps):
            torch.addmm(pre[t], h, weight_hh_t, out=states[t])  # (B, H)
            activate_(states[t])
            h = states[t]
        ctx.nonlinearity = nonlinearity
        ctx.save_for_backward(h0, weight_hh, states)
        return states

    @staticmethod
    def backward(ctx, grad_states):
        # A backward with create_graph=True (grad mode on in here) records a graph of its own, and
        # a gradient of this gradient (a gradient penalty, a Hessian-vector product) flows back
        # through grad_states, weight_hh, h0 and the saved states (and from those into this
        # function's inputs): so it is written in differentiable operations, and comes out right
        # (tests/test_rnn.py runs gradgradcheck). So is a backward under vmap (gradcheck's batched
        # gradients, ``autograd.grad(..., is_grads_batched=True)``): vmap has no rule for out= ops.
        # Otherwise the same numbers are written in place, one buffer for all steps
        # (``python -m benchmarks.rnn_vs_torch``).
        h0, weight_hh, states = ctx.saved_tensors
        steps = states.shape[0]
        # d(activation)/d(pre), written with the activation's output y:
        # tanh' = 1 - y^2, relu' = (y > 0).
        if ctx.nonlinearity == "tanh":
            slope = 1.0 - states * states
        else:
            slope = (states > 0).to(states.dtype)
        grad_h = torch.zeros_like(h0)  # gradient reaching h_t from step t+1
        batched = torch._C._functorch.is_legacy_batchedtensor(grad_states) or _transform_active()
        if torch.is_grad_enabled() or batched:
            grad_pres = [None] * steps  # (B, H) each
            for t in range(steps - 1, -1, -1):
                grad_pres[t] = (grad_states[t] + grad_h) * slope[t]
                grad_h = grad_pres[t] @ weight_hh  # (B, H)
            grad_pre = torch.stack(grad_pres)  # (T, B, H)
        else:
            grad_pre = torch.empty_like(states)  # (T, B, H)
            for t in range(steps - 1, -1, -1):
                torch.mul(grad_states[t] + grad_h, slope[t], out=grad_pre[t])
                grad_h = grad_pre[t] @ weight_hh  # (B, H)
        grad_h0 = grad_h if ctx.needs_input_grad[1] else None
        grad_weight_hh = None
        if ctx.needs_input_grad[2]:
            previous = torch.cat([h0.unsqueeze(0), states[:-1]])  # h_(t-1) for each t
            hidden = states.shape[-1]
            grad_weight_hh = grad_pre.reshape(-1, hidden).t() @ previous.reshape(-1, hidden)
        return grad_pre, grad_h0, grad_weight_hh, None


def _check_arguments(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout, bidirectional):
    """Refuse what torch.nn.RNN refuses, in its order, with its exception types and messages
    (``tests/test_rnn.py`` compares them); and bidirectional=True, which this RNN does not do."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
        )
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
            f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
            stacklevel=3,
        )
    for name, value in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero")
    # torch checks only the sign of num_layers; its loop over the layers, range(num_layers), then
    # refuses a float (or anything without __index__) with this TypeError, which operator.index
    # raises word for word.
    if num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")
    operator.index(num_layers)
    if bidirectional:
        raise ValueError("bidirectional=True is not supported by rnn_demo.rnn.RNN (use torch.nn.RNN)")


class RNN(nn.Module):
    """Multi-layer Elman RNN with the constructor, parameters and call of ``torch.nn.RNN``.

    Args:
        input_size: number of features in each input step x_t.
        hidden_size: number of features in the hidden state h_t.
        num_layers: stacked layers; layer k > 0 reads layer k-1's states.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
        bias: if False, the layers have no b_ih / b_hh.
        batch_first: if True, batched input and output are (batch, seq, feature);
            the hidden state stays (num_layers, batch, hidden) as in torch.
        dropout: probability of dropout on each layer's output except the last, applied
            in training mode only.

    Attributes as in torch: the arguments above, ``mode`` (``"RNN_TANH"`` or ``"RNN_RELU"``),
    ``bidirectional`` (False) and ``proj_size`` (0).

    Call: ``output, h_n = rnn(input, hx=None)`` with input (seq, batch, input_size)
    (or (batch, seq, input_size) with ``batch_first``, or (seq, input_size) unbatched) and
    hx (num_layers, batch, hidden_size) (or (num_layers, hidden_size) unbatched), zeros if
    omitted. ``output`` holds the last layer's h_t for every t; ``h_n`` every layer's last state.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        **unsupported,
    ):
        super().__init__()
        _check_arguments(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout, bidirectional)
        if "proj_size" in unsupported:  # torch.nn.RNN refuses it too, even 0
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if unsupported:
            raise TypeError(f"RNN got an unexpected keyword argument {next(iter(unsupported))!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.nonlinearity = nonlinearity
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        # What torch.nn.RNN has besides (code that reads them keeps working): one direction, no
        # projection; the two are refused above when asked for.
        self.bidirectional = bidirectional
        self.proj_size = 0
        factory = {"device": device, "dtype": dtype}
        # Registered in torch's order (ih, hh weights, then ih, hh biases, layer by layer) so
        # that the same seed draws the same initial weights as torch.nn.RNN.
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size
            self.register_parameter(
                f"weight_ih_l{layer}", nn.Parameter(torch.empty(hidden_size, layer_input, **factory))
            )
            self.register_parameter(
                f"weight_hh_l{layer}", nn.Parameter(torch.empty(hidden_size, hidden_size, **factory))
            )
            if bias:
                self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(hidden_size, **factory)))
                self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(hidden_size, **factory)))
        self.reset_parameters()

    @property
    def mode(self) -> str:
        """torch.nn.RNN's name for the recurrence: ``"RNN_TANH"`` or ``"RNN_RELU"``, by the nonlinearity."""
        return "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"

    @property
    def _all_weights(self) -> list[list[str]]:
        """Each layer's weight names, ``[weight_ih_lk, weight_hh_lk(, bias_ih_lk, bias_hh_lk)]``."""
        kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if self.bias else ("weight_ih", "weight_hh")
        return [[f"{kind}_l{layer}" for kind in kinds] for layer in range(self.num_layers)]

    @property
    def _flat_weights_names(self) -> list[str]:
        """The weights' names in torch's order: weight_ih, weight_hh (, bias_ih, bias_hh), layer by layer."""
        return [name for names in self._all_weights for name in names]

    @property
    def _flat_weights(self) -> list[torch.Tensor]:
        """The weights in the order of :attr:`_flat_weights_names`, as the forward pass reads them: a
        weight reparametrised by ``torch.nn.utils.weight_norm`` (or ``parametrize``) is the computed one."""
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[torch.Tensor]]:
        """Each layer's weights, ``[weight_ih, weight_hh, bias_ih, bias_hh]`` (no biases without
        ``bias``), as ``torch.nn.RNN.all_weights`` lists them."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Nothing to do: torch.nn.RNN packs its weights into one buffer for cuDNN; these stay
        separate tensors. Kept so that code calling it on torch's RNN runs unchanged."""

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as in torch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def extra_repr(self) -> str:
        """torch.nn.RNN's text, argument for argument (it does not show the nonlinearity)."""
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        return text

    def _check_shapes(self, input: torch.Tensor, h_0: torch.Tensor | None) -> bool:
        """Validate shapes like torch does; return whether the input is batched."""
        if isinstance(input, nn.utils.rnn.PackedSequence):
            raise TypeError("RNN does not accept PackedSequence input; pass a padded tensor")
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"RNN input must be a torch.Tensor, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise RNNShapeError(f"RNN: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
        if input.shape[-1] != self.input_size:
            raise RNNShapeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.shape[-1]}"
            )
        if input.shape[-2 if self.batch_first and input.dim() == 3 else 0] == 0:
            raise RNNShapeError("Expected sequence length to be larger than 0 in RNN")
        weight = self.weight_ih_l0
        if input.dtype != weight.dtype and not torch.is_autocast_enabled():
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight.dtype}). "
                f"Convert input: input.to({weight.dtype}), or convert model: model.to({input.dtype})"
            )
        batched = input.dim() == 3
        if h_0 is not None:
            if not isinstance(h_0, torch.Tensor):
                raise TypeError(f"RNN hx must be a torch.Tensor, got {type(h_0).__name__}")
            if h_0.dim() != (3 if batched else 2):
                kind = "3-D" if batched else "2-D"
                raise RNNShapeError(
                    f"For {'batched' if batched else 'unbatched'} {input.dim()}-D input, hx should also be "
                    f"{kind} but got {h_0.dim()}-D tensor"
                )
            batch = (input.shape[0] if self.batch_first else input.shape[1]) if batched else None
            expected = (self.num_layers, batch, self.hidden_size) if batched else (self.num_layers, self.hidden_size)
            if tuple(h_0.shape) != expected:
                raise RNNShapeError(f"Expected hidden size {expected}, got {list(h_0.shape)}")
        return batched

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None, *, h_0: torch.Tensor | None = None):
        """``output, h_n`` for ``input`` from the initial state ``hx`` (torch's name; ``h_0=`` is the
        same argument under this class's earlier name)."""
        if h_0 is not None:
            if hx is not None:
                raise TypeError("RNN.forward got the initial state twice (hx and h_0): pass hx only")
            hx = h_0
        h_0 = hx
        batched = self._check_shapes(input, h_0)
        if not batched:
            input = input.unsqueeze(1)  # (T, 1, I)
            h_0 = h_0.unsqueeze(1) if h_0 is not None else None
        elif self.batch_first:
            input = input.transpose(0, 1)  # (T, B, I)
        steps, batch, _ = input.shape
        if h_0 is None:
            h_0 = input.new_zeros(self.num_layers, batch, self.hidden_size)

        transformed = _transform_active()
        layer_input = input
        last_states = []
        for layer in range(self.num_layers):
            weight_ih = getattr(self, f"weight_ih_l{layer}")
            weight_hh = getattr(self, f"weight_hh_l{layer}")
            # Input part of the formula for every step at once: W_ih x_t + b_ih + b_hh.
            flat_input = layer_input.reshape(steps * batch, layer_input.shape[-1])  # (T*B, I)
            if self.bias:
                bias = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
                pre = torch.addmm(bias, flat_input, weight_ih.t())
            else:
                pre = flat_input @ weight_ih.t()
            pre = pre.view(steps, batch, self.hidden_size)  # (T, B, H)
            recurrence = _plain_recurrence if transformed else _Recurrence.apply
            states = recurrence(pre, h_0[layer], weight_hh, self.nonlinearity)  # (T, B, H)
            last_states.append(states[-1])
            if self.dropout and self.training and layer < self.num_layers - 1:
                states = F.dropout(states, p=self.dropout, training=True)
            layer_input = states

        output = layer_input
        h_n = torch.stack(last_states)  # (L, B, H)
        if not batched:
            return output.squeeze(1), h_n.squeeze(1)
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, h_n
