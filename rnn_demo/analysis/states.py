"""The state one layer of a CharRNN carries after every character of a text.

``torch.nn.RNN``/``GRU``/``LSTM`` return every step's state of the top layer only. To see layer
``k``, the stack is run layer by layer with one-layer twins that share the model's weights (no
copy, no random initialisation). An LSTM's cell state ``c`` is not returned at every step by
torch either: it is rebuilt from the layer's gates, ``c_t = f_t * c_(t-1) + i_t * g_t``, with the
gates computed from the layer's inputs and its ``h`` sequence in two matrix products.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnn_demo.analysis.predictions import evaluating, text_ids
from rnn_demo.model import CharRNN


def _one_layer(model: CharRNN, layer: int) -> nn.Module:
    """A one-layer recurrent module whose weights are layer ``layer`` of the model's stack."""
    stack = model.rnn
    input_size = stack.input_size if layer == 0 else stack.hidden_size
    options = {"num_layers": 1, "bias": stack.bias, "batch_first": True, "device": "meta"}
    if model.cell == "rnn":
        single = type(stack)(input_size, stack.hidden_size, nonlinearity=stack.nonlinearity, **options)
    else:
        single = type(stack)(input_size, stack.hidden_size, **options)
    weights = {name.replace(f"_l{layer}", "_l0"): getattr(stack, name) for name in stack._all_weights[layer]}
    single.load_state_dict(weights, assign=True)  # the model's own tensors: nothing copied
    return single


def _lstm_cell_states(single: nn.Module, inputs: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """c after every step of a one-layer LSTM from zero state, given its inputs (n, I) and its h (n, H)."""
    h_before = torch.cat([h.new_zeros(1, h.shape[1]), h[:-1]])  # h_(t-1), (n, H)
    gates = inputs @ single.weight_ih_l0.T + h_before @ single.weight_hh_l0.T  # (n, 4H)
    if single.bias:
        gates = gates + single.bias_ih_l0 + single.bias_hh_l0
    i, f, g, _ = gates.chunk(4, dim=1)  # torch's gate order: input, forget, cell, output
    forget = torch.sigmoid(f).cpu().numpy()
    write = (torch.sigmoid(i) * torch.tanh(g)).cpu().numpy()
    c = np.empty_like(write)  # the scan is elementwise: a short loop over time in NumPy
    previous = np.zeros(write.shape[1], dtype=write.dtype)
    for t in range(write.shape[0]):
        previous = c[t] = forget[t] * previous + write[t]
    return torch.from_numpy(c)


def layer_states(model: CharRNN, ids: list[int], layer: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Layer ``layer``'s h after each of ``ids`` (n, hidden_size) from the zero state, and for an
    LSTM its c (n, hidden_size); c is None for the other cells. float32, on the CPU."""
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < model.num_layers:
        raise ValueError(f"layer must be an integer from 0 to {model.num_layers - 1}, got {layer!r}")
    if not ids:
        empty = torch.zeros(0, model.hidden_size)
        return empty, (empty if model.cell == "lstm" else None)
    device = model.decoder.weight.device
    with evaluating(model):
        x = model.encoder(torch.as_tensor(ids, dtype=torch.long, device=device).view(1, -1))  # (1, n, E)
        for k in range(layer + 1):
            single = _one_layer(model, k)
            inputs = x
            x, _ = single(inputs)  # (1, n, H); dropout between layers is off in eval mode
        h = x[0].float()
        c = _lstm_cell_states(single, inputs[0].float(), h) if model.cell == "lstm" else None
    return h.cpu(), c


def neurons(model: CharRNN, text: str, layer: int) -> dict:
    """Layer ``layer``'s state after each known character of ``text``: ``{"chars", "h", "skipped"}``
    with ``h`` one list of hidden_size floats per character, and ``"c"`` too for an LSTM."""
    encoding = text_ids(model, text)
    h, c = layer_states(model, encoding.ids, layer)
    result = {"chars": [model.vocab[i] for i in encoding.ids], "h": h.tolist()}
    if c is not None:
        result["c"] = c.tolist()
    result["skipped"] = list(encoding.skipped)
    return result
