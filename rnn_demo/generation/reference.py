"""The reference engine: a generation step, the distribution of the next character and the draw,
in NumPy, with no compiler.

It is the readable specification of what :mod:`rnn_demo.generation.kernels` computes, and it
computes the same numbers, bit for bit: every product adds its terms in the kernels' order, every
activation is the kernels' series, every sum of probabilities is taken in index order, and each
operation is rounded to the same type. So a seed gives the same text with either engine, and a
request may start on this one while the kernels compile and the next one run compiled
(``tests/test_reference.py`` checks both against each other, over seeds and every cell).

The entry points take the arguments of the kernels' entry points of the same names, with the
weights in :class:`Weights` (plain matrices; the kernels take the same matrices in column panels,
see :func:`rnn_demo.generation.layout.pack_columns`), and return what they return. Like the
kernels, every function computes row b of its results from row b of its inputs alone, in the same
order whatever the number of rows (batch invariance), allocates what it returns and writes nothing
else, so any number of threads may call it at once on the same weights.

Where the order matters, it is written out:

* a product ``bias + rows @ W`` starts from the bias and adds ``x_k w_k`` for k = 0, 1, ... K - 1,
  each product and each sum rounded to float32. NumPy's ``add.reduce`` over the first axis of a
  C-contiguous (K + 1, N) array adds its rows one after another in that order (it sums pairwise
  only along the last axis, which it does not do here); the terms are computed first, in one call;
* the activations are the kernels' float64 series (:func:`exp_of_negative`), not ``np.exp``, whose
  last bit may differ from it (and, on a CPU with AVX-512, from the C library's);
* the exponentials of the distribution are the C library's ``exp`` (``math.exp``, which the
  compiled ``math.exp`` calls too), one element at a time: ``np.exp`` may use a vector routine of
  its own, rounded differently.

``python -m benchmarks.sampling_speed`` times it next to the compiled engine and the naive loop.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import NamedTuple

import numpy as np
import torch

# Cell codes, as the kernels take them.
RNN, GRU, LSTM = 0, 1, 2
CELL_CODES = {"rnn": RNN, "gru": GRU, "lstm": LSTM}

# exp's Taylor coefficients 1 / n!, from n = 12 down to 0 (the order of Horner's scheme)
TAYLOR = tuple(1.0 / math.factorial(n) for n in range(12, -1, -1))
EXP_CLIP = 120.0  # exp(-120) is 7.7e-53: 0 once rounded to float32
TANH_SERIES_BELOW = 0.03125  # |x| under which tanh is its own series (1 - e would lose digits)


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


# ---- activations: float64, from exp(-t)'s Taylor series, element by element as the kernels --------


def exp_of_negative(t: np.ndarray) -> np.ndarray:
    """exp(-t) for t >= 0 (float64): exp(-t / 256) from its Taylor series to degree 12, squared
    eight times (relative error below 1e-11). NaN stays NaN."""
    # The constants are 0-d arrays and every call writes in place: NumPy's fixed cost per call is
    # most of the series' time at the shipped sizes, and a Python float costs a conversion each time.
    multiply, add = np.multiply, np.add
    y = np.minimum(t, _EXP_CLIP)
    multiply(y, _MINUS_1_256, out=y)  # = -y / 256 exactly (a power of two)
    # Horner's scheme, p = p y + c for each coefficient, from p = 0; its first step gives the first
    # coefficient itself (or NaN where y is NaN, which the second step gives too).
    p = multiply(y, _TAYLOR[0])
    add(p, _TAYLOR[1], out=p)
    for coefficient in _TAYLOR[2:]:
        multiply(p, y, out=p)
        add(p, coefficient, out=p)
    for _ in range(8):  # the 256th power
        multiply(p, p, out=p)
    return p


_TAYLOR = tuple(np.array(coefficient) for coefficient in TAYLOR)
_EXP_CLIP, _MINUS_1_256 = np.array(EXP_CLIP), np.array(-1.0 / 256.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) of float64 values, without overflow."""
    return _sigmoid_from(x, exp_of_negative(np.abs(x)))


def _sigmoid_from(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """sigmoid(x) given e = exp(-|x|): 1 / (1 + e) for x >= 0, e / (1 + e) below."""
    denominator = np.add(e, 1.0)
    return np.divide(np.where(x >= 0, 1.0, e), denominator, out=denominator)


def tanh(x: np.ndarray) -> np.ndarray:
    """tanh of float64 values: (1 - e) / (1 + e) with e = exp(-2|x|), or its series near 0."""
    return _tanh_from(x, exp_of_negative(2.0 * np.abs(x)))


def _tanh_from(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """tanh(x) given e = exp(-2|x|)."""
    result = np.subtract(1.0, e)
    result /= np.add(1.0, e)
    a = np.abs(x)
    near = a < TANH_SERIES_BELOW
    if near.any():  # only where it is used (the same values as computing it everywhere)
        a = a[near]
        a2 = a * a
        result[near] = a * (1.0 - a2 * (1.0 / 3.0 - a2 * (2.0 / 15.0 - a2 * (17.0 / 315.0))))
    return np.copysign(result, x, out=result)


# ---- products -----------------------------------------------------------------------------------


def affine(bias: np.ndarray, rows: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """bias (N,) + rows (B, K) @ weight (K, N) -> (B, N) float32, each element summed in the order
    bias + x_0 w_0 + x_1 w_1 + ... (left to right), each product and each sum rounded to float32.
    Row by row, so that a row's result cannot depend on the others."""
    depth, width = weight.shape
    out = np.empty((rows.shape[0], width), np.float32)
    terms = _scratch((depth + 1, width))  # the bias, then the K products
    multiply = _torch_multiply if depth * width >= TORCH_MULTIPLY_FROM else _numpy_multiply
    for b, x in enumerate(rows):
        terms[0] = bias
        multiply(x, weight, terms[1:])
        np.add.reduce(terms, axis=0, out=out[b])
    return out


_per_thread = threading.local()


def _scratch(shape: tuple[int, int]) -> np.ndarray:
    """A float32 array of ``shape`` for this thread's use until its next call with that shape: kept,
    because a fresh array of a megabyte is fresh memory from the system, whose first writes cost
    more than the products written into it."""
    arrays = getattr(_per_thread, "arrays", None)
    if arrays is None:
        arrays = _per_thread.arrays = {}
    array = arrays.get(shape)
    if array is None:
        array = arrays[shape] = np.empty(shape, np.float32)
    return array


# The products x_k w_kn of a large matrix are made by torch, whose broadcast multiply is several
# times faster than NumPy's here (``python -m benchmarks.sampling_speed``), and those of a small one
# by NumPy, whose calls cost less; a product is rounded the same way by both (IEEE float32).
TORCH_MULTIPLY_FROM = 32_768  # elements of the matrix


def _numpy_multiply(x: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    """out = x[:, None] * weight, element by element."""
    np.multiply(x[:, None], weight, out=out)


def _torch_multiply(x: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    """out = x[:, None] * weight, element by element, by torch (into the same memory)."""
    torch.mul(torch.from_numpy(x)[:, None], torch.from_numpy(weight), out=torch.from_numpy(out))


# ---- the cells ------------------------------------------------------------------------------------
# input_part = W_ih x + b_ih and recurrent_part = W_hh h + b_hh, (B, G*H) float32, in torch's gate order.


def _sum_as_float64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b added in float32 (as the kernels add a gate's two parts), given as float64."""
    return np.add(a, b, dtype=np.float32, out=np.empty(np.broadcast_shapes(a.shape, b.shape)))


def rnn_update(input_part: np.ndarray, recurrent_part: np.ndarray) -> np.ndarray:
    """h' = tanh(input + recurrent), the sum in float32."""
    return tanh(_sum_as_float64(input_part, recurrent_part)).astype(np.float32)


def lstm_update(input_part: np.ndarray, recurrent_part: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gates i, f, g, o: c' = f c + i g (rounded to float32), h' = o tanh(c'). The four gates'
    exponentials are one series over all of them (sigmoid's exp(-|x|), tanh's exp(-2|x|))."""
    size = c.shape[-1]
    x = _sum_as_float64(input_part, recurrent_part)
    t = np.abs(x)
    t[:, 2 * size : 3 * size] *= 2.0  # the g gate's tanh
    e = exp_of_negative(t)
    gates = _sigmoid_from(x, e)  # the sigmoid of every gate (g's is not used)
    i, f, o = gates[:, :size], gates[:, size : 2 * size], gates[:, 3 * size :]
    g = _tanh_from(x[:, 2 * size : 3 * size], e[:, 2 * size : 3 * size])
    c_new = (f * c + i * g).astype(np.float32)
    h_new = (o * tanh(c_new.astype(np.float64))).astype(np.float32)
    return h_new, c_new


def gru_update(input_part: np.ndarray, recurrent_part: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Gates r, z, n: n = tanh(i_n + r (W_hn h + b_hn)) (in float64), h' = (1 - z) n + z h."""
    size = h.shape[-1]
    rz = sigmoid(_sum_as_float64(input_part[:, : 2 * size], recurrent_part[:, : 2 * size]))
    r, z = rz[:, :size], rz[:, size:]
    n_part = np.multiply(r, recurrent_part[:, 2 * size :])
    n_part += input_part[:, 2 * size :]
    n = tanh(n_part)
    n *= np.subtract(1.0, z)
    z *= h
    n += z
    return n.astype(np.float32)


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


@_ieee
def step(cell: int, tokens: np.ndarray, h: np.ndarray, c: np.ndarray, weights: Weights):
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


@_ieee
def distribution_row(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
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


def distribution(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """Probabilities (R, V) float32 from logits (R, V) float64, row by row (:func:`distribution_row`)."""
    probs = np.empty(logits.shape, np.float32)
    for r, row in enumerate(np.asarray(logits, np.float64)):
        probs[r] = distribution_row(row.copy(), temperature, top_k, top_p)
    return probs


@_ieee
def choose(probs: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """One token per row, argmax(p / q) (float32 division; the first largest, or the first NaN):
    probs and noise (R, V) float32 -> (R,) int64."""
    return np.argmax(probs / noise, axis=1).astype(np.int64)


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
        probs[i] = distribution_row(logits[0].astype(np.float64), temperature, top_k, top_p)
        tokens[i] = choose(probs[i : i + 1], noise[i : i + 1])[0]
        logits, hs[i], new_c = step(cell, tokens[i : i + 1], h, c, weights)
        h = hs[i]
        if cell == LSTM:
            cs[i] = c = new_c
    return tokens, probs, logits, hs, cs


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
            probs = distribution_row(logits[r].astype(np.float64), temperatures[r], top_ks[r], top_ps[r])
            tokens[r, i] = choose(probs[None], noise[r, i][None])[0]
        new_logits, new_h, new_c = step(cell, tokens[drawing, i], h[:, drawing], c[:, drawing], weights)
        logits[drawing], h[:, drawing] = new_logits, new_h
        if lstm:
            c[:, drawing] = new_c
    return tokens, logits, h, (c if lstm else h)


def prepare(weights: Weights) -> Weights:
    """The weights as this engine's entry points take them: as they are."""
    return weights
