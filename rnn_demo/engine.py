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
a request served in a batch would not give the text it gives alone. A plain ``addmm`` over the
batch does not promise that: measured here (MKL, AVX2, torch 2.13), row i of a batch of 16
differed in the last bits from the same state stepped alone in 160 of 160 rows, for rnn, gru
and lstm at hidden 64-512 (one row goes through a gemv kernel, a batch through gemm kernels
that also treat tail rows differently). So every product of a batch is computed row by row,
as a batch of (1, K) @ (K, N) products (``baddbmm``): each row gets the kernel a lone row gets,
bit for bit the same as the plain ``addmm`` of a single row (which a lone row uses), whatever
the batch size, as long as N is a multiple of :data:`COLUMN_BLOCK` (with N = 65, the vocabulary, rows differed again;
weights are padded with zero columns to a multiple). The elementwise steps (sigmoid, tanh)
are invariant too when the hidden size is a multiple of :data:`ELEMENTWISE_BLOCK`: torch runs
them 16 floats at a time and finishes a tensor with scalar code, which can round differently,
so with other sizes (GRU at hidden 50 or 100 differed) the rows are stepped one by one.
``tests/test_batching.py`` checks all of it.
The price: the weights are read once per row instead of once per batch, so a batch of 16
costs about 1.5-2x the time of one padded ``addmm`` (lstm-h256: ~1.6 ms instead of ~1.0 ms);
the other way to invariance measured here, padding the batch to a multiple of 8 rows, made a
lone stream 2-3x slower instead (M=8 gemm against gemv), and a lone stream is the common case.

The state has the model's own layout ((L, B, H), and (h, c) for an LSTM), so it can come from
``CharRNN.forward`` (a prompt primed in one call) and go back into it.
"""

from __future__ import annotations

import torch

from rnn_demo.model import CharRNN, Hidden

# Output columns of every product are padded to a multiple of this (see "Batch invariance").
COLUMN_BLOCK = 8
# Hidden sizes that are a multiple of this are stepped as a batch; others row by row.
ELEMENTWISE_BLOCK = 16


def _pad_columns(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` (contiguous) with zeros appended to its last dimension up to a multiple of COLUMN_BLOCK."""
    missing = -tensor.shape[-1] % COLUMN_BLOCK
    if missing == 0:
        return tensor.contiguous()
    return torch.cat([tensor, tensor.new_zeros(*tensor.shape[:-1], missing)], dim=-1)


def _rowwise_addmm(bias: torch.Tensor, rows: torch.Tensor, weight: torch.Tensor, columns: int) -> torch.Tensor:
    """bias + rows @ weight, one row at a time: bias (N,) or (B, N), rows (B, K), weight (K, N)
    -> (B, columns), the first ``columns`` of N. Row i depends on row i only, bit for bit."""
    batch = rows.shape[0]
    if batch == 1:  # the same single-row kernel, without baddbmm's extra cost
        return torch.addmm(bias, rows, weight)[:, :columns]
    bias = bias.unsqueeze(1) if bias.dim() == 2 else bias  # (B, 1, N) or (N,)
    products = torch.baddbmm(bias, rows.unsqueeze(1), weight.expand(batch, *weight.shape))  # (B, 1, N)
    return products.squeeze(1)[:, :columns]


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

        # Every matrix is stored (K, N) with N padded to a multiple of COLUMN_BLOCK (written N' below);
        # products are cut back to their real width: gate_width = G*H, or the vocabulary size.
        self.gate_width = weights["weight_hh_l0"].shape[0]
        self.vocab_size = model.decoder.weight.shape[0]
        # Layer 0: the input part of every character, (V, N').
        self.first_input = _pad_columns(torch.addmm(input_bias(0), embedding, weights["weight_ih_l0"].t()))
        self.first_recurrent = _pad_columns(weights["weight_hh_l0"].t())  # (H, N')
        self.upper = []  # for layers 1..L-1
        for layer in range(1, self.num_layers):
            if joint_bias:
                stacked = torch.cat([weights[f"weight_ih_l{layer}"], weights[f"weight_hh_l{layer}"]], dim=1)
                self.upper.append((_pad_columns(stacked.t()), _pad_columns(input_bias(layer))))  # ((2H, N'), (N',))
            else:
                self.upper.append(
                    (_pad_columns(weights[f"weight_ih_l{layer}"].t()), _pad_columns(weights[f"bias_ih_l{layer}"]))
                )
        if self.cell == "gru":  # GRU keeps its recurrent part apart (the reset gate scales it)
            self.recurrent_bias = [_pad_columns(weights[f"bias_hh_l{k}"]) for k in range(self.num_layers)]
            self.upper_recurrent = [_pad_columns(weights[f"weight_hh_l{k}"].t()) for k in range(1, self.num_layers)]
        self.decoder_weight = _pad_columns(model.decoder.weight.detach().t())  # (H, V')
        self.decoder_bias = _pad_columns(model.decoder.bias.detach())
        self.batches_rows_together = self.hidden_size % ELEMENTWISE_BLOCK == 0

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor, hidden: Hidden) -> tuple[torch.Tensor, Hidden]:
        """Feed one character per stream: tokens (B,) -> logits (B, V) and the new state.

        Row i of the results depends only on row i of the inputs, bit for bit, whatever B is
        (see "Batch invariance" above).
        """
        if not self.batches_rows_together and tokens.shape[0] > 1:
            return self._step_row_by_row(tokens, hidden)
        if self.cell == "lstm":
            h_all, c_all = hidden
        else:
            h_all, c_all = hidden, None
        new_h, new_c = [], []
        below = None  # the output of the layer below, (B, H)
        for layer in range(self.num_layers):
            h = h_all[layer]  # (B, H)
            if self.cell == "gru":
                h = self._gru_layer(layer, tokens, below, h)
            elif layer == 0:
                input_part = self.first_input.index_select(0, tokens)  # (B, N')
                gates = _rowwise_addmm(input_part, h, self.first_recurrent, self.gate_width)
                h, c = self._activate(gates, c_all[layer] if c_all is not None else None)
            else:
                weight, bias = self.upper[layer - 1]
                gates = _rowwise_addmm(bias, torch.cat([below, h], dim=1), weight, self.gate_width)
                h, c = self._activate(gates, c_all[layer] if c_all is not None else None)
            if self.cell == "lstm":
                new_c.append(c)
            new_h.append(h)
            below = h
        logits = _rowwise_addmm(self.decoder_bias, below, self.decoder_weight, self.vocab_size)  # (B, V)
        h_stack = torch.stack(new_h)  # (L, B, H)
        return logits, (h_stack, torch.stack(new_c)) if self.cell == "lstm" else h_stack

    def _step_row_by_row(self, tokens: torch.Tensor, hidden: Hidden) -> tuple[torch.Tensor, Hidden]:
        def row(i: int) -> Hidden:
            if self.cell == "lstm":
                return tuple(part[:, i : i + 1] for part in hidden)
            return hidden[:, i : i + 1]

        steps = [self.step(tokens[i : i + 1], row(i)) for i in range(tokens.shape[0])]
        logits = torch.cat([step_logits for step_logits, _ in steps])
        if self.cell == "lstm":
            return logits, tuple(torch.cat([state[k] for _, state in steps], dim=1) for k in range(2))
        return logits, torch.cat([state for _, state in steps], dim=1)

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
            input_part = self.first_input.index_select(0, tokens)[:, : self.gate_width]  # (B, 3H)
            recurrent_weight = self.first_recurrent
        else:
            weight, bias = self.upper[layer - 1]
            input_part = _rowwise_addmm(bias, below, weight, self.gate_width)
            recurrent_weight = self.upper_recurrent[layer - 1]
        recurrent_part = _rowwise_addmm(self.recurrent_bias[layer], h, recurrent_weight, self.gate_width)  # (B, 3H)
        reset_update = (input_part[:, : 2 * size] + recurrent_part[:, : 2 * size]).sigmoid_()
        reset, update = reset_update.split(size, dim=1)
        new = torch.addcmul(input_part[:, 2 * size :], reset, recurrent_part[:, 2 * size :]).tanh_()
        return torch.addcmul(new, update, h - new)
