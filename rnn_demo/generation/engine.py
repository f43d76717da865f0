"""The generation engine: one step of a trained CharRNN and the distribution of the next character,
in NumPy, written from the formulas of the three cells.

A step feeds one character to each of B streams and returns the logits of the next one:

    x_0 = embedding(c)                       (layer 0 reads the character)
    h'_l = cell(W_ih x_l + b_ih, W_hh h_l + b_hh)   for every layer l, x_{l+1} = h'_l
    logits = W_dec h'_{L-1} + b_dec

The first layer's input part, ``W_ih embedding(c) + b_ih``, depends on the character alone, so it is
computed once for the whole vocabulary when the weights are taken (:meth:`Weights.from_model`, or
:meth:`Weights.from_folder` straight from a model folder, without torch): a step starts with a row
lookup, not a product.

Batch invariance: a stream must get the same text alone or stepped beside others. One product of
the whole batch (a gemm) does not promise that: BLAS picks another kernel, and another order of
sums, for one row than for many. So every product here is taken row by row (:func:`affine`, one
``np.dot`` of a row), and the rest is elementwise, so row b of every result depends on row b of the
inputs alone, bit for bit, whatever B is (``tests/test_worker.py`` checks it on 100 seeds).

No function writes into the arrays it is given, so any number of threads may call
it at once on the same weights. ``python -m benchmarks.sampling_speed`` times it.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from rnn_demo.model.checkpoint import CONFIG_NAME, WEIGHTS_NAME, CheckpointError
from rnn_demo.model.tokenizer import CharTokenizer

if TYPE_CHECKING:
    from rnn_demo.model import CharRNN

# (h, c), each (L, B, H) float32; c is None for the cells without a cell state (RNN, GRU).
State = tuple[np.ndarray, np.ndarray | None]


GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # G: the gate blocks of W_ih and W_hh, in torch's layout


class Weights(NamedTuple):
    """A model as a step reads it: its vocabulary, and its weights in float32, the matrices transposed
    to (inputs, outputs), the gate columns in torch's order (i, f, g, o for an LSTM; r, z, n for a GRU)."""

    cell: str  # "rnn", "gru" or "lstm"
    tokenizer: CharTokenizer  # the model's vocabulary
    first_input: np.ndarray  # (V, G*H): W_ih embedding(c) + b_ih of layer 0, for every character c
    input_weights: list[np.ndarray]  # L - 1 of (H, G*H): W_ih of the layers above the first
    input_biases: list[np.ndarray]  # L - 1 of (G*H,): b_ih of the layers above the first
    recurrent_weights: list[np.ndarray]  # L of (H, G*H): W_hh
    recurrent_biases: list[np.ndarray]  # L of (G*H,): b_hh
    decoder_weight: np.ndarray  # (H, V)
    decoder_bias: np.ndarray  # (V,)

    @property
    def num_layers(self) -> int:
        return len(self.recurrent_weights)

    @property
    def hidden_size(self) -> int:
        return self.recurrent_weights[0].shape[0]

    @property
    def vocab(self) -> str:
        return self.tokenizer.vocab

    @property
    def vocab_size(self) -> int:
        return self.decoder_bias.shape[0]

    @classmethod
    def from_arrays(cls, cell: str, num_layers: int, vocab: str, arrays: dict[str, np.ndarray]) -> Weights:
        """The weights of a CharRNN's state dict (``encoder.weight``, ``rnn.weight_ih_l0``, ...,
        ``decoder.bias``), checked to fit the cell, the layers and the vocabulary; ValueError says
        what does not."""
        if cell not in GATES or isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"not a CharRNN: cell {cell!r}, {num_layers!r} layers")
        tokenizer = CharTokenizer(vocab)
        if "encoder.weight" not in arrays and "decoder.weight" in arrays:  # tied weights, stored once
            arrays = {**arrays, "encoder.weight": arrays["decoder.weight"]}
        layer_names = [f"rnn.{kind}_l{k}" for k in range(num_layers) for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        missing = [name for name in ["encoder.weight", *layer_names, "decoder.weight", "decoder.bias"] if name not in arrays]
        if missing:
            raise ValueError(f"the weights lack {', '.join(missing)}")
        arrays = {name: np.asarray(value, np.float32) for name, value in arrays.items()}
        size, vocab_size = arrays["rnn.weight_hh_l0"].shape[1], len(vocab)
        width = GATES[cell] * size  # G*H
        embedding_dim = arrays["encoder.weight"].shape[-1]
        shapes = {"encoder.weight": (vocab_size, embedding_dim), "decoder.weight": (vocab_size, size),
                  "decoder.bias": (vocab_size,)}  # fmt: skip
        for k in range(num_layers):
            shapes |= {f"rnn.weight_ih_l{k}": (width, embedding_dim if k == 0 else size), f"rnn.weight_hh_l{k}": (width, size),
                       f"rnn.bias_ih_l{k}": (width,), f"rnn.bias_hh_l{k}": (width,)}  # fmt: skip
        for name, shape in shapes.items():
            if arrays[name].shape != shape:
                raise ValueError(f"{name} has shape {arrays[name].shape}; a {cell} of this size needs {shape}")
            if not np.isfinite(arrays[name]).all():
                raise ValueError(f"{name} holds values that are not finite")

        def transposed(name: str) -> np.ndarray:
            return np.ascontiguousarray(arrays[name].T)

        first_input = arrays["encoder.weight"] @ arrays["rnn.weight_ih_l0"].T + arrays["rnn.bias_ih_l0"]
        above, every = range(1, num_layers), range(num_layers)
        return cls(
            cell=cell,
            tokenizer=tokenizer,
            first_input=np.ascontiguousarray(first_input, np.float32),
            input_weights=[transposed(f"rnn.weight_ih_l{k}") for k in above],
            input_biases=[arrays[f"rnn.bias_ih_l{k}"] for k in above],
            recurrent_weights=[transposed(f"rnn.weight_hh_l{k}") for k in every],
            recurrent_biases=[arrays[f"rnn.bias_hh_l{k}"] for k in every],
            decoder_weight=transposed("decoder.weight"),
            decoder_bias=arrays["decoder.bias"],
        )

    @classmethod
    def from_model(cls, model: CharRNN) -> Weights:
        """A float32 snapshot of ``model``'s weights (later changes to the model do not reach it)."""
        import torch

        if model.cell == "rnn" and model.rnn.nonlinearity != "tanh":
            raise ValueError("the engine steps the tanh RNN that CharRNN builds")
        with torch.inference_mode():
            arrays = {name: tensor.detach().to("cpu", torch.float32).numpy() for name, tensor in model.state_dict().items()}
        return cls.from_arrays(model.cell, model.num_layers, model.vocab, arrays)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> Weights:
        """A model folder (``config.json`` and ``model.safetensors``) read without torch;
        CheckpointError says what is wrong with it."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = Path(folder)
        try:
            config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
            arrays = load_file(folder / WEIGHTS_NAME)
            return cls.from_arrays(config["cell"], config["num_layers"], config["vocab"], arrays)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError) as error:
            raise CheckpointError(f"{folder} could not be read as a model folder: {error}") from None
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{folder} does not hold a model the engine can step: {error}") from None


def quiet_floats(function):
    """``function`` with NumPy's floating-point warnings off: an overflow gives inf and nobody is
    warned (a huge logit or a tiny temperature is a case the code handles, not an accident)."""

    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with np.errstate(all="ignore"):
            return function(*args, **kwargs)

    return quiet


# ---- the cells: input = W_ih x + b_ih and recurrent = W_hh h + b_hh, (B, G*H) -------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), written as 0.5 + 0.5 tanh(x / 2), which cannot overflow (in place in a new
    array: each NumPy call has a fixed cost, which is most of a small step's time)."""
    y = np.multiply(x, np.float32(0.5))
    np.tanh(y, out=y)
    y *= np.float32(0.5)
    y += np.float32(0.5)
    return y


def rnn_cell(input_part: np.ndarray, recurrent_part: np.ndarray) -> np.ndarray:
    """h' = tanh(W_ih x + b_ih + W_hh h + b_hh)."""
    return np.tanh(input_part + recurrent_part)


def gru_cell(input_part: np.ndarray, recurrent_part: np.ndarray, h: np.ndarray) -> np.ndarray:
    """r, z = sigmoid(...); n = tanh(x_n + r (W_hn h + b_hn)); h' = (1 - z) n + z h."""
    size = h.shape[-1]
    r_z = sigmoid(input_part[:, : 2 * size] + recurrent_part[:, : 2 * size])  # both gates in one call
    r, z = r_z[:, :size], r_z[:, size:]
    n = np.tanh(input_part[:, 2 * size :] + r * recurrent_part[:, 2 * size :])
    return (1 - z) * n + z * h


def lstm_cell(input_part: np.ndarray, recurrent_part: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """i, f, o = sigmoid(...); g = tanh(...); c' = f c + i g; h' = o tanh(c')."""
    size = c.shape[-1]
    gates = input_part + recurrent_part
    squashed = sigmoid(gates)  # i, f and o in one call (g's columns too, unused)
    i, f, o = squashed[:, :size], squashed[:, size : 2 * size], squashed[:, 3 * size :]
    c_new = f * c
    c_new += i * np.tanh(gates[:, 2 * size : 3 * size])
    return o * np.tanh(c_new), c_new


def affine(rows: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """rows (B, K) @ weight (K, N) + bias (N,) -> (B, N) float32, one row at a time (see the module's
    doc: batch invariance)."""
    out = np.empty((rows.shape[0], weight.shape[1]), np.float32)
    for b, row in enumerate(rows):
        np.dot(row, weight, out=out[b])
    out += bias
    return out


# ---- the step -------------------------------------------------------------------------------------


def zero_state(weights: Weights, batch: int = 1) -> State:
    """The state before any character (what ``CharRNN.init_hidden`` gives), for ``batch`` streams."""
    shape = (weights.num_layers, batch, weights.hidden_size)
    return np.zeros(shape, np.float32), np.zeros(shape, np.float32) if weights.cell == "lstm" else None


def step(weights: Weights, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """Feed one character to each of B streams: tokens (B,) ints and the state (h, c) of (L, B, H)
    -> the logits of the next character (B, V) and the new state (new arrays)."""
    h, c = state
    tokens = np.asarray(tokens, np.intp)
    if tokens.shape != (h.shape[1],):
        raise ValueError(f"{len(tokens)} tokens for a state of {h.shape[1]} streams")
    new_h = np.empty_like(h)
    new_c = np.empty_like(c) if c is not None else None
    for layer in range(weights.num_layers):
        if layer == 0:
            input_part = weights.first_input[tokens]  # (B, G*H)
        else:
            input_part = affine(new_h[layer - 1], weights.input_weights[layer - 1], weights.input_biases[layer - 1])
        recurrent_part = affine(h[layer], weights.recurrent_weights[layer], weights.recurrent_biases[layer])
        if weights.cell == "lstm":
            new_h[layer], new_c[layer] = lstm_cell(input_part, recurrent_part, c[layer])
        elif weights.cell == "gru":
            new_h[layer] = gru_cell(input_part, recurrent_part, h[layer])
        else:
            new_h[layer] = rnn_cell(input_part, recurrent_part)
    logits = affine(new_h[-1], weights.decoder_weight, weights.decoder_bias)  # (B, V)
    return logits, (new_h, new_c)


def stack_states(states: list[State]) -> State:
    """Several streams' states, (L, 1, H) each, as one state of (L, B, H) (one stream's as it is)."""
    if len(states) == 1:
        return states[0]
    h = np.concatenate([s[0] for s in states], axis=1)
    return h, (np.concatenate([s[1] for s in states], axis=1) if states[0][1] is not None else None)


def state_row(state: State, row: int) -> State:
    """Stream ``row`` of a batched state, as a state of one stream (L, 1, H) (copies, but the only
    stream of a state is that state)."""
    h, c = state
    if h.shape[1] == 1:
        return state
    return h[:, row : row + 1].copy(), (c[:, row : row + 1].copy() if c is not None else None)


# ---- the distribution of the next character -------------------------------------------------------


@quiet_floats
def distribution(logits: np.ndarray, temperature: float, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """The probabilities (V,) float64 to draw the next character from, given one stream's logits (V,):

    - temperature: the logits are divided by it (0: all the mass on the most likely character);
    - top_k: only the k most likely characters are kept (0, or k >= V: all of them);
    - top_p: then only the smallest set of most likely characters whose mass reaches top_p (1: all).

    In float64, so that any positive temperature a Python float holds stays positive.
    """
    logits = np.asarray(logits, np.float64)
    size = logits.shape[0]
    probs = np.zeros(size)
    if temperature == 0:
        probs[np.argmax(logits)] = 1.0
        return probs
    z = (logits - np.max(logits)) / temperature  # the largest is 0: exp cannot overflow
    if 0 < top_k < size:
        kth_largest = np.partition(z, size - top_k)[size - top_k]
        z[z < kth_largest] = -np.inf  # ties with the k-th are kept
    probs = np.exp(z)
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        mass_before = np.cumsum(probs[order]) - probs[order]  # of the more likely characters
        probs[order[mass_before >= top_p]] = 0.0  # keeps at least the most likely one
        probs /= probs.sum()
    return probs


def draw(probs: np.ndarray, generator: np.random.Generator) -> int:
    """One index drawn with probabilities ``probs`` (V,), by one uniform number and the inverse of
    the cumulative distribution; a character of probability 0 is never drawn."""
    cumulative = np.cumsum(probs)
    index = int(cumulative.searchsorted(generator.random() * cumulative[-1], side="right"))
    if index == len(probs):  # the product rounded up to the total: the last possible character
        index = int(np.flatnonzero(probs)[-1])
    return index
