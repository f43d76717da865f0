"""Fast single-character steps for generation, for one stream or many at once.

``CharRNN.forward`` is built for training: whole sequences through torch's fused layers. For
generation it runs one character at a time, where the fixed cost of each layer call dominates
(torch.lstm spends ~0.7 ms on a single step of a 2x128 LSTM on this CPU). :class:`Stepper`
snapshots the model's weights into the few matrices one step needs and does the arithmetic of
each cell directly:

* the first layer's input part, ``W_ih embed(c) + b``, depends only on the character, so it
  is precomputed for the whole vocabulary: a step starts with a row lookup, not a matmul;
* above the first layer, the input and recurrent parts are one matmul over ``[x, h]``;
* a batch of states is stepped together, so several streams share each matmul.

Batch invariance: a row's result must not depend on how many other rows share the step, or
a request served in a batch would not give the text it gives alone. MKL's sgemm does not
promise that: measured here (AVX2, torch 2.13), row i of a batch of 16 differed in the last
bits from the same state stepped alone in 160 of 160 rows, for rnn, gru and lstm at hidden
64-512 (the single row goes through a gemv kernel, and the tail rows of a gemm through
other kernels). With the batch padded to a multiple of :data:`ROW_BLOCK` rows every row came
out bit-identical for any batch size from 1 to 128 (``tests/test_batching.py`` checks it).
So :meth:`Stepper.step` always pads; a lone stream pays for it (about 1.5x the time of an
unpadded single-row step for lstm-h256), a batch hardly does.

The state has the model's own layout ((L, B, H), and (h, c) for an LSTM), so it can come from
``CharRNN.forward`` (a prompt primed in one call) and go back into it.
"""

from __future__ import annotations

import torch

from rnn_demo.model import CharRNN, Hidden

# Steps run on a multiple of this many rows (zero rows added, their results dropped), so that
# every row goes through the same matmul kernels whatever the batch size. 4 was enough on this
# CPU; 8 leaves room for CPUs whose kernels work on more rows at once.
ROW_BLOCK = 8


def _pad_rows(tensor: torch.Tensor, rows: int, dim: int) -> torch.Tensor:
    """``tensor`` with zero rows appended along ``dim`` up to ``rows``."""
    missing = rows - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=dim)


class Stepper:
    """Steps a CharRNN one character at a time, with its weights as they were when it was made."""

    @torch.inference_mode()
    def __init__(self, model: CharRNN):
        self.cell = model.cell
        self.num_layers = model.num_layers
        self.hidden_size = model.hidden_size
        rnn = model.rnn
        if self.cell == "rnn" and rnn.nonlinearity != "tanh":
            raise ValueError("Stepper supports the tanh RNN that CharRNN builds")
        weights = {name: tensor.detach().clone() for name, tensor in rnn.named_parameters()}
        embedding = model.encoder.weight.detach()  # (V, E)
        # Which biases go with the input part: all of them, except GRU's b_hh, which the
        # reset gate multiplies separately.
        joint_bias = self.cell != "gru"

        def input_bias(layer: int) -> torch.Tensor:
            bias = weights[f"bias_ih_l{layer}"]
            return bias + weights[f"bias_hh_l{layer}"] if joint_bias else bias

        # Layer 0: the input part of every character, (V, G*H).
        self.first_input = torch.addmm(input_bias(0), embedding, weights["weight_ih_l0"].t())
        self.first_recurrent = weights["weight_hh_l0"].t().contiguous()  # (H, G*H)
        self.upper = []  # for layers 1..L-1
        for layer in range(1, self.num_layers):
            if joint_bias:
                stacked = torch.cat([weights[f"weight_ih_l{layer}"], weights[f"weight_hh_l{layer}"]], dim=1)
                self.upper.append((stacked.t().contiguous(), input_bias(layer)))  # ((2H, G*H), (G*H,))
            else:
                self.upper.append(
                    (weights[f"weight_ih_l{layer}"].t().contiguous(), weights[f"bias_ih_l{layer}"])
                )
        if self.cell == "gru":  # GRU keeps its recurrent part apart (the reset gate scales it)
            self.recurrent_bias = [weights[f"bias_hh_l{k}"] for k in range(self.num_layers)]
            self.upper_recurrent = [weights[f"weight_hh_l{k}"].t().contiguous() for k in range(1, self.num_layers)]
        self.decoder_weight = model.decoder.weight.detach().t().contiguous()  # (H, V)
        self.decoder_bias = model.decoder.bias.detach().clone()

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor, hidden: Hidden) -> tuple[torch.Tensor, Hidden]:
        """Feed one character per stream: tokens (B,) -> logits (B, V) and the new state.

        Row i of the results depends only on row i of the inputs, bit for bit, whatever B is
        (see ROW_BLOCK).
        """
        batch = tokens.shape[0]
        rows = -(-batch // ROW_BLOCK) * ROW_BLOCK
        tokens = _pad_rows(tokens, rows, dim=0)  # (R,)
        if self.cell == "lstm":
            h_all, c_all = (_pad_rows(state, rows, dim=1) for state in hidden)  # (L, R, H) each
        else:
            h_all, c_all = _pad_rows(hidden, rows, dim=1), None
        new_h, new_c = [], []
        below = None  # the output of the layer below, (B, H)
        for layer in range(self.num_layers):
            h = h_all[layer]  # (B, H)
            if self.cell == "gru":
                h = self._gru_layer(layer, tokens, below, h)
            elif layer == 0:
                gates = torch.addmm(self.first_input.index_select(0, tokens), h, self.first_recurrent)
                h, c = self._activate(gates, c_all[layer] if c_all is not None else None)
            else:
                weight, bias = self.upper[layer - 1]
                gates = torch.addmm(bias, torch.cat([below, h], dim=1), weight)
                h, c = self._activate(gates, c_all[layer] if c_all is not None else None)
            if self.cell == "lstm":
                new_c.append(c)
            new_h.append(h)
            below = h
        logits = torch.addmm(self.decoder_bias, below, self.decoder_weight)[:batch]  # (B, V)
        h_stack = torch.stack(new_h)[:, :batch]  # (L, B, H)
        return logits, (h_stack, torch.stack(new_c)[:, :batch]) if self.cell == "lstm" else h_stack

    def _activate(self, gates: torch.Tensor, c: torch.Tensor | None):
        """h_t = tanh(gates) for the Elman RNN; the LSTM update (gates i, f, g, o) otherwise."""
        if self.cell == "rnn":
            return gates.tanh_(), None
        size = self.hidden_size
        input_gate, forget_gate, cell_gate, output_gate = gates.split(size, dim=1)
        c = torch.addcmul(forget_gate.sigmoid() * c, input_gate.sigmoid(), cell_gate.tanh())
        return output_gate.sigmoid() * c.tanh(), c

    def _gru_layer(self, layer: int, tokens: torch.Tensor, below: torch.Tensor | None, h: torch.Tensor):
        """GRU update (gates r, z, n): n = tanh(i_n + r * (W_hn h + b_hn)), h' = n + z * (h - n)."""
        size = self.hidden_size
        if layer == 0:
            input_part = self.first_input.index_select(0, tokens)  # (B, 3H)
            recurrent_weight = self.first_recurrent
        else:
            weight, bias = self.upper[layer - 1]
            input_part = torch.addmm(bias, below, weight)
            recurrent_weight = self.upper_recurrent[layer - 1]
        recurrent_part = torch.addmm(self.recurrent_bias[layer], h, recurrent_weight)  # (B, 3H)
        reset_update = (input_part[:, : 2 * size] + recurrent_part[:, : 2 * size]).sigmoid_()
        reset, update = reset_update.split(size, dim=1)
        new = torch.addcmul(input_part[:, 2 * size :], reset, recurrent_part[:, 2 * size :]).tanh_()
        return torch.addcmul(new, update, h - new)
