"""The compiled arithmetic of generation (numba): a whole step of the recurrent stack, the
distribution of the next character, and the draw.

It is the compiled engine: ``rnn_demo/generation/reference.py`` computes the same numbers in NumPy,
bit for bit, and is its specification (``tests/test_reference.py`` checks one against the other);
``rnn_demo/generation/engines.py`` compiles this one in the background and chooses between them.

Each entry point is one call from Python however many layers, gates and streams there are, so a
step costs its products and little else (see ``rnn_demo/generation/stepper.py`` for the design, and
``rnn_demo/generation/sampling.py`` for the two sampling entry points' callers). They run without the GIL (nogil),
allocate what they return (and their scratch) on every call, and write nothing else: any number
of threads may run them at once, on the same weights.

Batch invariance: every function below computes row b of its results from row b of its inputs,
in the same order of operations whatever the number of rows: the products sum over k in a fixed
order for every column (see :func:`add_product`), the activations are computed element by element
with no vector library (so no lane-dependent rounding), and numba is not allowed to fuse or
reorder floating-point operations (no ``fastmath``).

Compiled code is cached on disk (numba's ``cache=True``): in ``rnn_demo/__pycache__`` when that
is writable, else in numba's per-user cache directory (``$NUMBA_CACHE_DIR`` overrides both);
where neither is writable the functions are compiled in memory in each process instead. numba
renews a cached function when this file changes, not when ``rnn_demo/generation/simd.py`` does:
after editing only that one, delete the ``kernels*.nbi`` and ``kernels*.nbc`` files of the cache.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from rnn_demo.generation import simd
from rnn_demo.generation.layout import PANEL, pack_columns
from rnn_demo.generation.reference import CELL_CODES, GRU, LSTM, RNN, Weights

__all__ = [  # the entry points, and what it shares with the reference engine and the layout
    "CACHED", "CELL_CODES", "ENTRY_POINTS", "GRU", "LSTM", "PANEL", "RNN", "add_product", "choose",
    "distribution", "pack_columns", "prepare", "sample", "sample_rows", "sigmoid", "step", "tanh", "warm_up",
]

# A product's weight matrix (K, N) is stored in column panels of PANEL columns (see
# rnn_demo.generation.layout).
ROWS_TOGETHER = 4  # rows of a batch computed together, each panel's loads shared by them
PANELS_TOGETHER = 4  # panels one row goes through together (four streams from memory, not one)
PREFETCH_AHEAD = 1024  # floats (4 KB) ahead of the panel position being read: asked for early


# nogil: other threads run while a step runs. error_model="numpy": a float division by zero gives
# inf or NaN (IEEE) instead of raising, as in NumPy; the check it spares would keep loops scalar.
_OPTIONS = dict(nogil=True, error_model="numpy")


CACHED = True  # whether the compiled code is kept in numba's disk cache (False: in memory only)


def _compiled(function):
    """``numba.njit``, cached on disk where a cache directory can be written."""
    global CACHED
    try:
        return numba.njit(cache=True, **_OPTIONS)(function)
    except RuntimeError:  # numba found no writable cache directory: compile in memory only
        CACHED = False
        return numba.njit(**_OPTIONS)(function)


def prepare(weights: Weights) -> tuple:
    """A model's weights in the form :func:`step` and the sampling entry points take them: the
    three product matrices in column panels (see :func:`step`)."""
    return (
        weights.first_input,
        pack_columns(weights.input_weights),
        pack_columns(weights.recurrent_weights),
        weights.input_biases,
        weights.recurrent_biases,
        pack_columns(weights.decoder_weight),
        weights.decoder_bias,
    )


# ---- activations, in float64 from a Taylor series: no libm call, so the loops vectorize ----------

# exp's Taylor coefficients 1 / n!, from n = 12 down to 0 (the order of Horner's scheme)
_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(12, -1, -1))
_EXP_CLIP = 120.0  # exp(-120) is 7.7e-53: 0 once rounded to float32
_TANH_SERIES_BELOW = 0.03125  # |x| under which tanh is its own series (1 - e would lose digits)


@_compiled
def _exp_of_negative(t):
    """exp(-t) for t >= 0, float64, relative error below 1e-11: exp(-t / 256) from its Taylor
    series to degree 12 (|t / 256| <= 0.47), squared eight times. NaN stays NaN."""
    y = -(_EXP_CLIP if t > _EXP_CLIP else t) / 256.0
    p = 0.0
    for coefficient in _TAYLOR:  # Horner's scheme
        p = p * y + coefficient
    for _ in range(8):  # the 256th power
        p = p * p
    return p


@_compiled
def sigmoid(x):
    """1 / (1 + exp(-x)) for a float64 x, without overflow."""
    e = _exp_of_negative(abs(x))
    return (1.0 if x >= 0 else e) / (1.0 + e)


@_compiled
def tanh(x):
    """tanh of a float64 x: (1 - e) / (1 + e) with e = exp(-2|x|), or its series near 0 (where
    1 - e would lose digits)."""
    a = abs(x)
    e = _exp_of_negative(2.0 * a)
    far = (1.0 - e) / (1.0 + e)
    a2 = a * a
    near = a * (1.0 - a2 * (1.0 / 3.0 - a2 * (2.0 / 15.0 - a2 * (17.0 / 315.0))))
    return math.copysign(near if a < _TANH_SERIES_BELOW else far, x)


# ---- products ---------------------------------------------------------------------------------
# out (B, N) += rows (B, K) @ W (K, N), every output element adding its k terms in the same order:
# ``out += x_k w_k`` for k = 0, 1, ..., K - 1, each product and each sum rounded to float32. The
# code below only chooses which elements are computed together (8 columns of a vector, 1 or 4 rows,
# panel after panel), never how one is computed; so each row's result is the same bit for bit
# whatever the other rows are, and whatever their number.


@_compiled
def _add_term(total, x, panels, index):
    """total + x * (the vector at panels[index]), lane by lane."""
    return simd.add(total, simd.multiply(x, simd.load(panels, index)))


@_compiled
def _four_rows_of_a_panel(rows, panels, out, b, column, depth, width):
    """out[b : b + 4, column : column + 16] += rows[b : b + 4] @ W[:, column : column + 16], the
    panel's 16 columns as two vectors, the 8 output vectors in registers over the whole sum. With
    a weight row's two vectors and a broadcast of x, that is 11 of AVX's 16 vector registers, so
    none is spilled to memory (adding 4 terms at a time, as an earlier version did, needed more:
    7 of its 8 output vectors went to the stack and back for each 4 terms). The panel is asked
    for ahead of use: the first block of rows reads it from beyond the L2 cache (the three
    matrices of a lstm-h256 step take 3 MB)."""
    o0 = b * width + column
    o1, o2, o3 = o0 + width, o0 + 2 * width, o0 + 3 * width
    a00, a01 = simd.load(out, o0), simd.load(out, o0 + 8)
    a10, a11 = simd.load(out, o1), simd.load(out, o1 + 8)
    a20, a21 = simd.load(out, o2), simd.load(out, o2 + 8)
    a30, a31 = simd.load(out, o3), simd.load(out, o3 + 8)
    r0, r1, r2, r3 = rows[b], rows[b + 1], rows[b + 2], rows[b + 3]
    p = column * depth  # the panels before this one hold column * depth floats
    for k in range(depth):
        w0, w1 = simd.load(panels, p), simd.load(panels, p + 8)  # weight row k of the panel
        simd.prefetch(panels, p + PREFETCH_AHEAD)  # its cache line, some way ahead
        x = simd.splat(r0[k])
        a00, a01 = simd.add(a00, simd.multiply(x, w0)), simd.add(a01, simd.multiply(x, w1))
        x = simd.splat(r1[k])
        a10, a11 = simd.add(a10, simd.multiply(x, w0)), simd.add(a11, simd.multiply(x, w1))
        x = simd.splat(r2[k])
        a20, a21 = simd.add(a20, simd.multiply(x, w0)), simd.add(a21, simd.multiply(x, w1))
        x = simd.splat(r3[k])
        a30, a31 = simd.add(a30, simd.multiply(x, w0)), simd.add(a31, simd.multiply(x, w1))
        p += PANEL
    simd.store(out, o0, a00)
    simd.store(out, o0 + 8, a01)
    simd.store(out, o1, a10)
    simd.store(out, o1 + 8, a11)
    simd.store(out, o2, a20)
    simd.store(out, o2 + 8, a21)
    simd.store(out, o3, a30)
    simd.store(out, o3 + 8, a31)


@_compiled
def _one_row_of_four_panels(rows, panels, out, b, column, depth, width):
    """out[b, column : column + 64] += rows[b] @ W[:, column : column + 64]: four panels side by side,
    8 output vectors in registers. Reading four panels at once keeps four streams of memory
    requests going instead of one: a lone row is bound by how fast its weights come from memory."""
    o = b * width + column
    a0, a1, a2, a3 = simd.load(out, o), simd.load(out, o + 8), simd.load(out, o + 16), simd.load(out, o + 24)
    a4, a5, a6, a7 = simd.load(out, o + 32), simd.load(out, o + 40), simd.load(out, o + 48), simd.load(out, o + 56)
    r = rows[b]
    q0 = column * depth
    q1, q2, q3 = q0 + PANEL * depth, q0 + 2 * PANEL * depth, q0 + 3 * PANEL * depth
    for k in range(depth):
        x, p = simd.splat(r[k]), k * PANEL
        a0, a1 = _add_term(a0, x, panels, q0 + p), _add_term(a1, x, panels, q0 + p + 8)
        a2, a3 = _add_term(a2, x, panels, q1 + p), _add_term(a3, x, panels, q1 + p + 8)
        a4, a5 = _add_term(a4, x, panels, q2 + p), _add_term(a5, x, panels, q2 + p + 8)
        a6, a7 = _add_term(a6, x, panels, q3 + p), _add_term(a7, x, panels, q3 + p + 8)
    simd.store(out, o, a0)
    simd.store(out, o + 8, a1)
    simd.store(out, o + 16, a2)
    simd.store(out, o + 24, a3)
    simd.store(out, o + 32, a4)
    simd.store(out, o + 40, a5)
    simd.store(out, o + 48, a6)
    simd.store(out, o + 56, a7)


@_compiled
def _one_row_of_a_panel(rows, panels, out, b, column, depth, width):
    """out[b, column : column + 16] += rows[b] @ W[:, column : column + 16]."""
    o = b * width + column
    a0, a1 = simd.load(out, o), simd.load(out, o + 8)
    r = rows[b]
    q = column * depth
    for k in range(depth):
        x, p = simd.splat(r[k]), q + k * PANEL
        a0, a1 = _add_term(a0, x, panels, p), _add_term(a1, x, panels, p + 8)
    simd.store(out, o, a0)
    simd.store(out, o + 8, a1)


@_compiled
def _last_columns(rows, panels, out, first, depth):
    """out[:, first:] += rows @ W[:, first:], the last N % PANEL columns (a (K, N - first) block
    at the end of the panels), one element at a time."""
    batch, width = out.shape
    columns = width - first
    block = first * depth
    for b in range(batch):
        x = rows[b]
        for n in range(first, width):
            w = panels[block + n - first :: columns]  # column n of the block, a weight row apart
            total = out[b, n]
            for k in range(depth):
                total += x[k] * w[k]
            out[b, n] = total


@_compiled
def add_product(rows, panels, out):
    """out += rows @ W: rows (B, K), W (K, N) as :func:`pack_columns` stores it (K * N,), out (B, N),
    all float32 (panels and out C-contiguous).

    Panel after panel, the rows go 4 at a time (each weight vector loaded once for 4 rows, and the
    4 x 16 outputs kept in registers over the whole sum); the rows left go one at a time, through
    4 panels at once. One stream (B = 1) thus reads the weights once, from start to end."""
    batch, depth = rows.shape
    width = out.shape[1]
    if out.shape[0] != batch or panels.shape[0] != depth * width:
        raise ValueError("the rows, the weight panels and the output do not fit together")
    full = width - width % PANEL
    blocked = batch - batch % ROWS_TOGETHER  # rows computed 4 at a time; the rest one at a time
    for column in range(0, full, PANEL):
        for b in range(0, blocked, ROWS_TOGETHER):
            _four_rows_of_a_panel(rows, panels, out, b, column, depth, width)
    column = 0
    while column + PANELS_TOGETHER * PANEL <= full:
        for b in range(blocked, batch):
            _one_row_of_four_panels(rows, panels, out, b, column, depth, width)
        column += PANELS_TOGETHER * PANEL
    while column < full:
        for b in range(blocked, batch):
            _one_row_of_a_panel(rows, panels, out, b, column, depth, width)
        column += PANEL
    if full < width:
        _last_columns(rows, panels, out, full, depth)


# ---- the cells: new state from a layer's input part and recurrent part -------------------------
# input_part = W_ih x + b_ih and recurrent_part = W_hh h + b_hh, (B, G*H) in torch's gate order.


@_compiled
def _rnn_update(input_part, recurrent_part, h_out):
    """h' = tanh(input + recurrent)."""
    batch, size = h_out.shape
    for b in range(batch):
        gi, gh, new = input_part[b], recurrent_part[b], h_out[b]
        for j in range(size):
            new[j] = tanh(np.float64(gi[j] + gh[j]))


@_compiled
def _lstm_update(input_part, recurrent_part, c, h_out, c_out):
    """Gates i, f, g, o: c' = f c + i g, h' = o tanh(c')."""
    batch, size = h_out.shape
    for b in range(batch):
        gi, gh, cell, new_h, new_c = input_part[b], recurrent_part[b], c[b], h_out[b], c_out[b]
        for j in range(size):
            i = sigmoid(np.float64(gi[j] + gh[j]))
            f = sigmoid(np.float64(gi[size + j] + gh[size + j]))
            g = tanh(np.float64(gi[2 * size + j] + gh[2 * size + j]))
            o = sigmoid(np.float64(gi[3 * size + j] + gh[3 * size + j]))
            c_new = np.float32(f * cell[j] + i * g)
            new_c[j] = c_new
            new_h[j] = o * tanh(np.float64(c_new))


@_compiled
def _gru_update(input_part, recurrent_part, h, h_out):
    """Gates r, z, n: n = tanh(i_n + r (W_hn h + b_hn)), h' = (1 - z) n + z h."""
    batch, size = h_out.shape
    for b in range(batch):
        gi, gh, old, new = input_part[b], recurrent_part[b], h[b], h_out[b]
        for j in range(size):
            r = sigmoid(np.float64(gi[j] + gh[j]))
            z = sigmoid(np.float64(gi[size + j] + gh[size + j]))
            n = tanh(gi[2 * size + j] + r * gh[2 * size + j])
            new[j] = (1.0 - z) * n + z * old[j]


@_compiled
def _step_into(cell, tokens, h, c, weights, logits, new_h, new_c):
    """The body of :func:`step`, writing the logits and the new state into the given arrays."""
    first_input, input_panels, recurrent_panels, input_biases, recurrent_biases, decoder_panels, decoder_bias = weights
    layers, batch, size = h.shape
    vocab_size, width = first_input.shape
    if (
        recurrent_panels.shape != (layers, size * width)
        or input_panels.shape != (layers - 1, size * width)
        or decoder_panels.shape[0] != size * vocab_size
        or (cell == LSTM and c.shape != h.shape)
        or tokens.shape[0] != batch
    ):
        raise ValueError("the state's or the tokens' shape does not fit this model")
    for b in range(batch):
        if tokens[b] < 0 or tokens[b] >= vocab_size:
            raise IndexError("a token id is outside the vocabulary")
    input_part = np.empty((batch, width), np.float32)
    recurrent_part = np.empty((batch, width), np.float32)
    for layer in range(layers):
        if layer == 0:
            for b in range(batch):
                input_part[b] = first_input[tokens[b]]
        else:
            input_part[:] = input_biases[layer]
            add_product(new_h[layer - 1], input_panels[layer - 1], input_part)
        recurrent_part[:] = recurrent_biases[layer]
        add_product(h[layer], recurrent_panels[layer], recurrent_part)
        if cell == LSTM:
            _lstm_update(input_part, recurrent_part, c[layer], new_h[layer], new_c[layer])
        elif cell == GRU:
            _gru_update(input_part, recurrent_part, h[layer], new_h[layer])
        else:
            _rnn_update(input_part, recurrent_part, new_h[layer])
    logits[:] = decoder_bias
    add_product(new_h[layers - 1], decoder_panels, logits)


@_compiled
def step(cell, tokens, h, c, weights):
    """One character in for each of B streams, through every layer and the decoder.

    cell: RNN, GRU or LSTM; tokens (B,) int64; h, c (L, B, H) float32 (c is read only for an
    LSTM; pass h for the others); weights: the tuple (first_input (V, G*H): layer 0's input part
    of every character, its b_ih included; input_panels (L - 1, H * G*H): W_ih of the layers
    above, transposed to (H, G*H), in column panels (:func:`pack_columns`); recurrent_panels
    (L, H * G*H): W_hh likewise; input_biases, recurrent_biases (L, G*H), row 0 of input_biases
    unused (it is in first_input); decoder_panels (H * V,): the decoder's weight, (H, V) in column
    panels; decoder_bias (V,)).
    Returns logits (B, V), the new h (L, B, H) and the new c (an LSTM's; (0, 0, 0) otherwise).
    """
    layers, batch, size = h.shape
    logits = np.empty((batch, weights[6].shape[0]), np.float32)
    new_h = np.empty((layers, batch, size), np.float32)
    new_c = np.empty((layers, batch, size) if cell == LSTM else (0, 0, 0), np.float32)
    _step_into(cell, tokens, h, c, weights, logits, new_h, new_c)
    return logits, new_h, new_c


# ---- sampling ----------------------------------------------------------------------------------


@_compiled
def _argmax(values):
    """np.argmax of a 1-D array: the first largest, or the first NaN if there is one."""
    best = 0
    for i in range(values.shape[0]):
        if values[i] != values[i]:
            return i
        if values[i] > values[best]:
            best = i
    return best


@_compiled
def _order_descending(values):
    """Indices that sort ``values`` from the largest down, ties in index order (a stable sort;
    insertion sort: a vocabulary is short)."""
    order = np.empty(values.shape[0], np.int64)
    for i in range(values.shape[0]):
        order[i] = i
    for i in range(1, values.shape[0]):
        index = order[i]
        j = i
        while j > 0 and values[order[j - 1]] < values[index]:
            order[j] = order[j - 1]
            j -= 1
        order[j] = index
    return order


@_compiled
def _normalize(p):
    """p /= sum(p), the sum taken in index order."""
    total = 0.0
    for i in range(p.shape[0]):
        total += p[i]
    for i in range(p.shape[0]):
        p[i] /= total


@_compiled
def _distribution_into(logits, temperature, top_k, top_p, probs, scratch):
    """The body of :func:`distribution` for one row: logits (V,) float64 -> probs (V,) float32;
    scratch: (V,) float64."""
    vocab_size = logits.shape[0]
    p = scratch
    if temperature == 0:
        probs[:] = 0.0
        probs[_argmax(logits)] = 1.0
        return
    # Shifted so the largest is 0 before dividing: a tiny temperature then gives -inf (by
    # overflow, as intended), never inf - inf.
    largest = logits[0]
    for i in range(vocab_size):
        largest = logits[i] if logits[i] > largest or logits[i] != logits[i] else largest
    for i in range(vocab_size):
        p[i] = (logits[i] - largest) / temperature
    if 0 < top_k < vocab_size:
        kth_largest = p[_order_descending(p)[top_k - 1]]
        for i in range(vocab_size):
            if p[i] < kth_largest:
                p[i] = -np.inf
    for i in range(vocab_size):
        p[i] = math.exp(p[i])
    _normalize(p)
    if top_p < 1.0:
        mass_before = 0.0  # probability of the more likely tokens
        for i in _order_descending(p):
            kept = mass_before < top_p  # keeps at least the most likely one
            mass_before += p[i]
            if not kept:
                p[i] = 0.0
        _normalize(p)
    for i in range(vocab_size):
        probs[i] = p[i]


@_compiled
def distribution(logits, temperature, top_k, top_p):
    """Probabilities (R, V) float32 from logits (R, V) float64, row by row, in float64:
    temperature (0 = all the mass on the most likely token), then top-k (0 = off), then top-p
    (1.0 = off; keeps the smallest set of most likely tokens whose mass reaches it)."""
    rows, vocab_size = logits.shape
    probs = np.empty((rows, vocab_size), np.float32)
    scratch = np.empty(vocab_size)
    for r in range(rows):
        _distribution_into(logits[r], temperature, top_k, top_p, probs[r], scratch)
    return probs


@_compiled
def _choice(probs, noise):
    """argmax(p / q) over one row (float32 division; np.argmax's ties and NaN)."""
    ratios = np.empty(probs.shape[0], np.float32)
    for i in range(probs.shape[0]):
        ratios[i] = probs[i] / noise[i]
    return _argmax(ratios)


@_compiled
def choose(probs, noise):
    """One token per row, argmax(p / q): probs and noise (R, V) float32 -> (R,) int64."""
    tokens = np.empty(probs.shape[0], np.int64)
    for r in range(probs.shape[0]):
        tokens[r] = _choice(probs[r], noise[r])
    return tokens


@_compiled
def sample(cell, logits, h, c, weights, noise, temperature, top_k, top_p):
    """One stream's next ``n`` characters: from logits (1, V) float32 and the state after them,
    ``n`` times the distribution (:func:`distribution`), the draw (:func:`choose`, with noise (n, V))
    and the step (:func:`step`). Returns the tokens (n,) int64, the distributions (n, V) float32,
    the logits after the last step (1, V), and the state after each step: h (n, L, 1, H) and c
    (n, L, 1, H) for an LSTM ((n, 0, 0, 0) otherwise)."""
    count, vocab_size = noise.shape
    layers, _, size = h.shape
    tokens = np.empty(count, np.int64)
    probs = np.empty((count, vocab_size), np.float32)
    hs = np.empty((count, layers, 1, size), np.float32)
    cs = np.empty((count, layers, 1, size) if cell == LSTM else (count, 0, 0, 0), np.float32)
    row, scratch = np.empty(vocab_size), np.empty(vocab_size)
    logits = logits.copy()
    for i in range(count):
        row[:] = logits[0]
        _distribution_into(row, temperature, top_k, top_p, probs[i], scratch)
        tokens[i] = _choice(probs[i], noise[i])
        _step_into(cell, tokens[i : i + 1], h, c, weights, logits, hs[i], cs[i])
        h = hs[i]
        if cell == LSTM:
            c = cs[i]
    return tokens, probs, logits, hs, cs


@_compiled
def sample_rows(cell, logits, h, c, weights, noise, counts, temperatures, top_ks, top_ps):
    """Several streams' next characters at once: row r draws and steps ``counts[r]`` characters, each
    time its distribution (:func:`distribution`, with its own settings), its draw (:func:`choose`,
    with noise (R, K, V), K >= max(counts)) and one step of the rows still drawing (:func:`step`;
    batch-invariant, so a row's results do not depend on the others). A row that has drawn its
    count keeps its logits and state from then on.

    logits (R, V) float32; h, c (L, R, H) (c read only for an LSTM); counts (R,) int64;
    temperatures, top_ps (R,) float64; top_ks (R,) int64. Returns the tokens (R, K) int64 (-1
    past a row's count), and the logits, h and c after each row's last step (new arrays; c is h
    for a cell without a cell state).
    """
    rows, most, vocab_size = noise.shape
    layers, _, size = h.shape
    lstm = cell == LSTM
    if (
        logits.shape[0] != rows
        or logits.shape[1] != vocab_size
        or h.shape[1] != rows
        or counts.shape[0] != rows
        or temperatures.shape[0] != rows
        or top_ks.shape[0] != rows
        or top_ps.shape[0] != rows
    ):
        raise ValueError("the logits, the state, the noise and the settings do not have the same rows")
    for r in range(rows):
        if counts[r] < 0 or counts[r] > most:
            raise ValueError("a row's count of characters is more than its noise rows (or negative)")
    tokens = np.full((rows, most), -1, np.int64)
    logits = logits.copy()
    h = h.copy()
    c = c.copy() if lstm else h
    row, scratch, probs = np.empty(vocab_size), np.empty(vocab_size), np.empty(vocab_size, np.float32)
    drawing = np.empty(rows, np.int64)  # the rows that draw at this position
    for i in range(most):
        n = 0
        for r in range(rows):
            if i < counts[r]:
                row[:] = logits[r]
                _distribution_into(row, temperatures[r], top_ks[r], top_ps[r], probs, scratch)
                tokens[r, i] = _choice(probs, noise[r, i])
                drawing[n] = r
                n += 1
        if n == 0:
            break
        step_tokens = np.empty(n, np.int64)
        step_h = np.empty((layers, n, size), np.float32)
        step_c = np.empty((layers, n, size), np.float32) if lstm else step_h
        for j in range(n):
            step_tokens[j] = tokens[drawing[j], i]
            step_h[:, j] = h[:, drawing[j]]
            if lstm:
                step_c[:, j] = c[:, drawing[j]]
        new_logits = np.empty((n, vocab_size), np.float32)
        new_h = np.empty((layers, n, size), np.float32)
        new_c = np.empty((layers, n, size) if lstm else (0, 0, 0), np.float32)
        _step_into(cell, step_tokens, step_h, step_c, weights, new_logits, new_h, new_c)
        for j in range(n):
            logits[drawing[j]] = new_logits[j]
            h[:, drawing[j]] = new_h[:, j]
            if lstm:
                c[:, drawing[j]] = new_c[:, j]
    return tokens, logits, h, c


ENTRY_POINTS = (step, distribution, choose, sample, sample_rows)  # what warm_up compiles (with their callees)


@functools.cache
def warm_up() -> None:
    """Compile every entry point above now, or load it from numba's disk cache, so that a server's
    first request does not wait for it (``python -m benchmarks.startup`` times both). It is done
    once for all models: the calls below have the argument types a Stepper and the sampling
    functions pass (a two-layer LSTM of hidden size 1 over two tokens)."""
    size, width, vocab_size = 1, 4, 2
    weights = (
        np.zeros((vocab_size, width), np.float32),  # first_input
        np.zeros((1, size * width), np.float32),  # input_panels
        np.zeros((2, size * width), np.float32),  # recurrent_panels
        np.zeros((2, width), np.float32),  # input_biases
        np.zeros((2, width), np.float32),  # recurrent_biases
        np.zeros(size * vocab_size, np.float32),  # decoder_panels
        np.zeros(vocab_size, np.float32),  # decoder_bias
    )
    state = np.zeros((2, 1, size), np.float32)
    logits, _, _ = step(LSTM, np.zeros(1, np.int64), state, state, weights)
    probs = distribution(logits.astype(np.float64), 1.0, 0, 1.0)
    noise = np.ones((1, vocab_size), np.float32)
    choose(probs, noise)
    sample(LSTM, logits, state, state, weights, noise, 1.0, 0, 1.0)
    settings = np.ones(1), np.zeros(1, np.int64), np.ones(1)
    sample_rows(LSTM, logits, state, state, weights, noise[:, None], np.ones(1, np.int64), *settings)
