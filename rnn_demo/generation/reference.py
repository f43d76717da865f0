"""The reference engine: a generation step, the distribution of the next character and the draw,
in NumPy, with no compiler.

It is the readable specification of what :mod:`rnn_demo.generation.kernels` computes: the same
step, from the same weights, with the products and activations NumPy and BLAS provide (a one-row
``np.dot`` per row, ``np.tanh``), and the very same distribution and draw. The kernels' tests check
them against it (``tests/test_reference.py``): the same tokens' distributions and draws, bit for
bit; steps equal to float32 rounding. The step's last bits differ, since the kernels add each
product's terms in another order and compute their activations from a series of their own, so
once in a while a draw that is a near tie goes the other way and the two texts part from there
(``python -m benchmarks.engine_agreement`` counts how often). A request is served by one engine
from start to end (``rnn_demo.generation.engines``), so its text never depends on when the kernels
were ready.

The entry points take the arguments of the kernels' entry points of the same names, with the
weights in :class:`Weights` (plain matrices; the kernels take the same matrices in column panels,
see :func:`rnn_demo.generation.layout.pack_columns`), and return what they return. Like the
kernels, every function computes row b of its results from row b of its inputs alone, by the same
calls whatever the number of rows (batch invariance: one stream gives the same text alone or
batched with others), allocates what it returns and writes nothing else, so any number of threads
may call it at once on the same weights.

In the distribution the order of operations is the kernels': its exponentials are the C library's
``exp`` (``math.exp``, which the compiled ``math.exp`` calls too), one element at a time
(``np.exp`` may use a vector routine of its own, rounded differently), and its sums are taken
left to right (``np.add.accumulate``; ``np.sum`` adds pairwise).

``python -m benchmarks.sampling_speed`` times it next to the compiled engine and the naive loop.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

# Cell codes, as the kernels take them.
RNN, GRU, LSTM = 0, 1, 2
CELL_CODES = {"rnn": RNN, "gru": GRU, "lstm": LSTM}


class Weights(NamedTuple):
    """A model's weights as a step reads them (float32, C-contiguous), G*H being the gate columns in
    torch's gate order."""

    first_input: np.ndarray  # (V, G*H): layer 0's input part W_ih embed(c) + b_ih of every character
    input_weights: np.ndarray  # (L - 1, H, G*H): W_ih of the layers above the first, transposed
    recurrent_weights: np.ndarray  # (L, H, G*H): W_hh of every layer, transposed
    input_biases: np.ndarray  # (L, G*H): b_ih (row 0 unused: it is in first_input)
    recurrent_biases: np.ndarray  # (L, G*H): b_hh
    decoder_weight: np.ndarray  # (H, V): the decoder's weight, transposed
    decoder_bias: np.ndarray  # (V,)


def _ieee(function):
    """``function`` with NumPy's floating-point warnings off: an overflow gives inf, 0 / 0 gives
    NaN, as in the kernels (numba's ``error_model="numpy"``), and nobody is warned."""

    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with np.errstate(all="ignore"):
            return function(*args, **kwargs)

    return quiet


# ---- the cells --------------------------------------------------------------------------------
# input_part = W_ih x + b_ih and recurrent_part = W_hh h + b_hh, (B, G*H) float32, in torch's gate order.


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), as 0.5 + 0.5 tanh(x / 2): no overflow for any x."""
    y = np.tanh(x * np.float32(0.5))
    y *= np.float32(0.5)
    y += np.float32(0.5)
    return y


def rnn_update(input_part: np.ndarray, recurrent_part: np.ndarray) -> np.ndarray:
    """h' = tanh(input + recurrent)."""
    return np.tanh(input_part + recurrent_part)


def lstm_update(input_part: np.ndarray, recurrent_part: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gates i, f, g, o: c' = f c + i g, h' = o tanh(c')."""
    size = c.shape[-1]
    gates = input_part + recurrent_part
    i, f, o = sigmoid(gates[:, :size]), sigmoid(gates[:, size : 2 * size]), sigmoid(gates[:, 3 * size :])
    c_new = f * c
    c_new += i * np.tanh(gates[:, 2 * size : 3 * size])
    return o * np.tanh(c_new), c_new


def gru_update(input_part: np.ndarray, recurrent_part: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Gates r, z, n: n = tanh(i_n + r (W_hn h + b_hn)), h' = (1 - z) n + z h = n + z (h - n)."""
    size = h.shape[-1]
    rz = sigmoid(input_part[:, : 2 * size] + recurrent_part[:, : 2 * size])
    r, z = rz[:, :size], rz[:, size:]
    n = np.tanh(input_part[:, 2 * size :] + r * recurrent_part[:, 2 * size :])
    return n + z * (h - n)


def affine(bias: np.ndarray, rows: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """bias (N,) + rows (B, K) @ weight (K, N) -> (B, N) float32, row by row: a one-row product
    (BLAS's gemv) for each, so that a row's result is the same whatever the other rows are
    (one product of the whole batch would not promise that: see docs/design.md, "Batch invariance")."""
    out = np.empty((rows.shape[0], weight.shape[1]), np.float32)
    for b, x in enumerate(rows):
        np.dot(x, weight, out=out[b])
        out[b] += bias
    return out


# ---- the step -------------------------------------------------------------------------------------


def _check_step(cell: int, tokens: np.ndarray, h: np.ndarray, c: np.ndarray, weights: Weights) -> None:
    layers, batch, size = h.shape
    vocab_size, width = weights.first_input.shape
    if (
        weights.recurrent_weights.shape != (layers, size, width)
        or weights.input_weights.shape != (layers - 1, size, width)
        or weights.decoder_weight.shape[0] != size
        or (cell == LSTM and c.shape != h.shape)
        or tokens.shape != (batch,)
    ):
        raise ValueError("the state's or the tokens' shape does not fit this model")
    if batch and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise IndexError("a token id is outside the vocabulary")


def _step(cell: int, tokens: np.ndarray, h: np.ndarray, c: np.ndarray, weights: Weights):
    """One character in for each of B streams, through every layer and the decoder: tokens (B,)
    int64, h and c (L, B, H) float32 (c read only for an LSTM) -> logits (B, V), the new h
    (L, B, H) and the new c (an LSTM's; (0, 0, 0) otherwise)."""
    _check_step(cell, tokens, h, c, weights)
    layers = h.shape[0]
    new_h = np.empty_like(h)
    new_c = np.empty_like(h) if cell == LSTM else np.empty((0, 0, 0), np.float32)
    for layer in range(layers):
        if layer == 0:
            input_part = weights.first_input[tokens]
        else:
            input_part = affine(weights.input_biases[layer], new_h[layer - 1], weights.input_weights[layer - 1])
        recurrent_part = affine(weights.recurrent_biases[layer], h[layer], weights.recurrent_weights[layer])
        if cell == LSTM:
            new_h[layer], new_c[layer] = lstm_update(input_part, recurrent_part, c[layer])
        elif cell == GRU:
            new_h[layer] = gru_update(input_part, recurrent_part, h[layer])
        else:
            new_h[layer] = rnn_update(input_part, recurrent_part)
    logits = affine(weights.decoder_bias, new_h[layers - 1], weights.decoder_weight)
    return logits, new_h, new_c


# ---- sampling -------------------------------------------------------------------------------------


def _order_descending(values: np.ndarray) -> np.ndarray:
    """Indices that sort ``values`` from the largest down, ties in index order."""
    return np.argsort(-values, kind="stable")


def _sum_in_order(values: np.ndarray) -> float:
    """The sum taken left to right (``add.accumulate`` adds one element at a time; ``sum`` does not)."""
    return float(np.add.accumulate(values)[-1]) if len(values) else 0.0


def _distribution_row(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """The distribution of one row, logits (V,) float64 -> probabilities (V,) float32: temperature
    (0 = all the mass on the most likely token), then top-k (0 = off), then top-p (1.0 = off;
    keeps the smallest set of most likely tokens whose mass reaches it), in float64."""
    vocab_size = logits.shape[0]
    if temperature == 0:
        probs = np.zeros(vocab_size, np.float32)
        probs[np.argmax(logits)] = 1.0  # the first largest, or the first NaN
        return probs
    # Shifted so the largest is 0 before dividing: a tiny temperature then gives -inf (by
    # overflow, as intended), never inf - inf.
    p = (logits - np.max(logits)) / temperature
    if 0 < top_k < vocab_size:
        p[p < p[_order_descending(p)[top_k - 1]]] = -np.inf
    p = np.array([math.exp(value) for value in p.tolist()])
    p /= _sum_in_order(p)
    if top_p < 1.0:
        order = _order_descending(p)
        mass_before = np.add.accumulate(np.concatenate(([0.0], p[order][:-1])))  # of the more likely tokens
        p[order[mass_before >= top_p]] = 0.0  # keeps at least the most likely one
        p /= _sum_in_order(p)
    return p.astype(np.float32)


@_ieee
def distribution(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """Probabilities (R, V) float32 from logits (R, V) float64, row by row (:func:`distribution_row`)."""
    probs = np.empty(logits.shape, np.float32)
    for r, row in enumerate(np.asarray(logits, np.float64)):
        probs[r] = _distribution_row(row.copy(), temperature, top_k, top_p)
    return probs


def _choose(probs: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """One token per row, argmax(p / q) (float32 division; the first largest, or the first NaN):
    probs and noise (R, V) float32 -> (R,) int64."""
    return np.argmax(probs / noise, axis=1).astype(np.int64)


@_ieee
def sample(cell, logits, h, c, weights, noise, temperature, top_k, top_p):
    """One stream's next ``n`` characters: from logits (1, V) float32 and the state after them,
    ``n`` times the distribution, the draw (with noise (n, V)) and the step. Returns the tokens (n,)
    int64, the distributions (n, V) float32, the logits after the last step (1, V), and the state
    after each step: h (n, L, 1, H) and c (n, L, 1, H) for an LSTM ((n, 0, 0, 0) otherwise)."""
    count, vocab_size = noise.shape
    layers, _, size = h.shape
    tokens = np.empty(count, np.int64)
    probs = np.empty((count, vocab_size), np.float32)
    hs = np.empty((count, layers, 1, size), np.float32)
    cs = np.empty((count, layers, 1, size) if cell == LSTM else (count, 0, 0, 0), np.float32)
    for i in range(count):
        probs[i] = _distribution_row(logits[0].astype(np.float64), temperature, top_k, top_p)
        tokens[i] = np.argmax(probs[i] / noise[i])  # as _choose does for one row
        logits, hs[i], new_c = _step(cell, tokens[i : i + 1], h, c, weights)
        h = hs[i]
        if cell == LSTM:
            cs[i] = c = new_c
    return tokens, probs, logits, hs, cs


@_ieee
def sample_rows(cell, logits, h, c, weights, noise, counts, temperatures, top_ks, top_ps):
    """Several streams' next characters at once: row r draws and steps ``counts[r]`` characters,
    each time its distribution (with its own settings), its draw (with noise (R, K, V)) and one
    step of the rows still drawing. A row that has drawn its count keeps its logits and state.
    Returns the tokens (R, K) int64 (-1 past a row's count), and the logits, h and c after each
    row's last step (new arrays; c is h for a cell without a cell state)."""
    rows, most, vocab_size = noise.shape
    lstm = cell == LSTM
    if (
        logits.shape != (rows, vocab_size)
        or h.shape[1] != rows
        or not len(counts) == len(temperatures) == len(top_ks) == len(top_ps) == rows
    ):
        raise ValueError("the logits, the state, the noise and the settings do not have the same rows")
    if rows and (counts.min() < 0 or counts.max() > most):
        raise ValueError("a row's count of characters is more than its noise rows (or negative)")
    tokens = np.full((rows, most), -1, np.int64)
    logits, h = logits.copy(), h.copy()
    c = c.copy() if lstm else h
    for i in range(most):
        drawing = np.flatnonzero(i < counts)  # the rows that draw at this position
        if len(drawing) == 0:
            break
        for r in drawing:
            probs = _distribution_row(logits[r].astype(np.float64), temperatures[r], top_ks[r], top_ps[r])
            tokens[r, i] = np.argmax(probs / noise[r, i])  # as _choose does for one row
        new_logits, new_h, new_c = _step(cell, tokens[drawing, i], h[:, drawing], c[:, drawing], weights)
        logits[drawing], h[:, drawing] = new_logits, new_h
        if lstm:
            c[:, drawing] = new_c
    return tokens, logits, h, (c if lstm else h)


# The entry points that the functions above are, with NumPy's floating-point warnings off.
step, distribution_row, choose = _ieee(_step), _ieee(_distribution_row), _ieee(_choose)


def prepare(weights: Weights) -> Weights:
    """The weights as this engine's entry points take them: as they are."""
    return weights
