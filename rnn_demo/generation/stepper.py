"""Fast single-character steps for generation, for one stream or many at once.

``CharRNN.forward`` is built for training: whole sequences through torch's fused layers. For
generation it runs one character at a time, where the fixed cost of each call dominates (the
naive column of ``python -m benchmarks.sampling_speed`` is that loop). :class:`Stepper`
snapshots the model's weights as float32 NumPy arrays, in the few matrices one step needs
(:class:`rnn_demo.generation.reference.Weights`), and runs a whole step with its engine (see
``rnn_demo.generation.engines``): the reference engine, NumPy, or, once compiled, one call of
:func:`rnn_demo.generation.kernels.step` (numba), as described here. They agree to float32
rounding. The compiled step:

* one call, not dozens: every NumPy or torch call has a fixed cost of its own, and a step
  written as NumPy calls makes two dozen of them;
* the products are most of a step's cost at hidden 512: the weight matrices (megabytes) are
  read from memory once per step, start to end, about as fast as a one-row BLAS product
  (``python -m benchmarks.engine_choices``);
* the first layer's input part, ``W_ih embed(c) + b_ih``, depends only on the character, so it
  is precomputed for the whole vocabulary: a step starts with a row lookup, not a product;
* the matrices are kept transposed, (K, N) with N the gate columns (or the vocabulary) in
  torch's gate order, and cut into panels of 16 columns, each panel one contiguous block
  (:func:`rnn_demo.generation.layout.pack_columns`): the batched product reads a panel once for every 4
  rows, from L1, and keeps their 4 x 16 outputs in registers;
* the activations are computed in float64 from a series (``rnn_demo.generation.kernels``), within one
  float32 step of the exact value, with no call into a maths library, so that their loops
  vectorize;
* one stream's generation draws and steps up to 64 characters per call (:meth:`Stepper.sample`),
  the distribution and the draw of each character computed in the same call; the server's
  scheduler does the same for all its streams at once (:meth:`Stepper.sample_rows`).

Batch invariance: a row's result must not depend on how many other rows share the step, or
a request served in a batch would not give the text it gives alone. A plain matrix product of
the batch does not promise that (BLAS takes another kernel, with another order of sums, for
one row than for many: ``python -m benchmarks.engine_choices``). The compiled step sums every
output element's terms in one fixed order whatever B is, and computes each activation from its
own inputs; with several rows it computes 4 rows of a panel together (faster than one product
per row, and nearly as fast as a gemm here), which changes which elements are computed together,
never how one is. So row i comes out bit for bit the same at any batch size;
``tests/test_batching.py`` checks every cell at several sizes.

The state keeps the model's layout ((L, B, H) arrays, and (h, c) for an LSTM);
:func:`state_arrays` and :func:`state_tensors` convert it from and to torch, without copying
what is already a float32 CPU tensor. :meth:`Stepper.step` writes only arrays it allocates:
several threads may step with one Stepper at once (the compiled step runs without the GIL).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from rnn_demo.generation import engines, reference
from rnn_demo.generation.engines import Engine
from rnn_demo.model import CharRNN, Hidden

State = np.ndarray | tuple[np.ndarray, np.ndarray]  # (L, B, H) float32; (h, c) for an LSTM


def state_arrays(hidden: Hidden) -> State:
    """A model's state (torch, on any device) as float32 arrays on the CPU."""

    def array(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().to("cpu", torch.float32).numpy()

    return tuple(array(part) for part in hidden) if isinstance(hidden, tuple) else array(hidden)


def state_tensors(state: State) -> Hidden:
    """A state of arrays as CPU tensors (sharing their memory)."""
    return tuple(torch.from_numpy(part) for part in state) if isinstance(state, tuple) else torch.from_numpy(state)


def _stacked(tensors: list[torch.Tensor], shape: tuple[int, ...], transposed: bool = False) -> np.ndarray:
    """A copy of the tensors (each transposed, if asked), stacked into one C-contiguous (row-major)
    float32 array of ``shape``. torch copies a transposed matrix several times faster than NumPy
    here, and ``Tensor.copy_`` faster than ``torch.stack`` of transposed views (the copies are most
    of the time it takes to make a Stepper)."""
    stacked = torch.empty(shape, dtype=torch.float32)
    for row, tensor in zip(stacked, tensors, strict=True):
        part = tensor.detach()
        row.copy_(part.t() if transposed else part)  # converts to float32 on the CPU as it copies
    return stacked.numpy()


class Stepper:
    """Steps a CharRNN one character at a time, with its weights as they were when it was made."""

    @torch.inference_mode()
    def __init__(self, model: CharRNN, engine: Engine | None = None):
        self.cell = model.cell
        self.num_layers = layers = model.num_layers
        self.hidden_size = size = model.hidden_size
        rnn = model.rnn
        if self.cell == "rnn" and rnn.nonlinearity != "tanh":
            raise ValueError("Stepper supports the tanh RNN that CharRNN builds")
        self._cell_code = reference.CELL_CODES[self.cell]
        weights = dict(rnn.named_parameters())
        width = weights["weight_hh_l0"].shape[0]  # G*H: the gate columns
        # Every matrix is taken as (K, N), N being the gate columns G*H (or the vocabulary).
        # Layer 0: the input part of every character, (V, G*H).
        embedding = model.encoder.weight.detach().to("cpu", torch.float32)  # (V, E)
        first_input = embedding @ weights["weight_ih_l0"].detach().to("cpu", torch.float32).t() + weights["bias_ih_l0"]
        above, every = range(1, layers), range(layers)
        self.weights = reference.Weights(
            first_input=_stacked([first_input], (1, model.vocab_size, width))[0],
            input_weights=_stacked([weights[f"weight_ih_l{k}"] for k in above], (layers - 1, size, width), True),
            recurrent_weights=_stacked([weights[f"weight_hh_l{k}"] for k in every], (layers, size, width), True),
            input_biases=_stacked([weights[f"bias_ih_l{k}"] for k in every], (layers, width)),
            recurrent_biases=_stacked([weights[f"bias_hh_l{k}"] for k in every], (layers, width)),
            decoder_weight=_stacked([model.decoder.weight], (1, size, model.vocab_size), True)[0],
            decoder_bias=_stacked([model.decoder.bias], (1, model.vocab_size))[0],
        )
        self.engine = engine if engine is not None else engines.current()
        self._prepared: dict[str, tuple] = {}  # each engine's form of the weights, by engine name

    def using(self, engine: Engine) -> Stepper:
        """This Stepper stepping with ``engine`` (the same weights, shared)."""
        if engine == self.engine:
            return self
        other = copy.copy(self)  # shares self._prepared: each engine's weights are made once
        other.engine = engine
        return other

    @property
    def _weights(self) -> tuple:
        """The weights in the form this Stepper's engine takes them (made on first use)."""
        prepared = self._prepared.get(self.engine.name)
        if prepared is None:  # two threads may both make it: the same arrays, one kept
            prepared = self._prepared.setdefault(self.engine.name, self.engine.module.prepare(self.weights))
        return prepared

    def zero_state(self, batch: int) -> State:
        """The zero state of ``batch`` streams (what ``CharRNN.init_hidden`` gives)."""
        shape = (self.num_layers, batch, self.hidden_size)
        if self.cell == "lstm":
            return np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        return np.zeros(shape, np.float32)

    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """Feed one character per stream: tokens (B,) integers -> logits (B, V) and the new state
        (new arrays; the given state is left as it was).

        Row i of the results depends only on row i of the inputs, bit for bit, whatever B is
        (see "Batch invariance" above).
        """
        h, c = self._state_arrays(state)
        tokens = np.ascontiguousarray(tokens, np.int64)
        logits, new_h, new_c = self.engine.module.step(self._cell_code, tokens, h, c, self._weights)
        return logits, (new_h, new_c) if self.cell == "lstm" else new_h

    def sample(
        self, logits: np.ndarray, state: State, noise: np.ndarray, temperature: float, top_k: int, top_p: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[State]]:
        """One stream's next ``len(noise)`` characters in one call: from its logits (1, V) and the
        state after them, each time the distribution (as ``sampling.next_token_distribution``
        computes it), the draw (as ``sampling.choose_tokens`` with that row of ``noise`` (n, V))
        and the step (as :meth:`step`), bit for bit.

        Returns the tokens (n,), the distributions they were drawn from (n, V), the logits after
        the last step (1, V), and the state after each step (new arrays).
        """
        h, c = self._state_arrays(state)
        tokens, probs, logits, hs, cs = self.engine.module.sample(
            self._cell_code,
            np.ascontiguousarray(logits, np.float32),
            h,
            c,
            self._weights,
            np.ascontiguousarray(noise, np.float32),
            float(temperature),
            top_k,
            float(top_p),
        )
        states = list(zip(hs, cs)) if self.cell == "lstm" else list(hs)
        return tokens, probs, logits, states

    def sample_rows(
        self,
        logits: np.ndarray,
        state: State,
        noise: np.ndarray,
        counts: np.ndarray,
        temperatures: np.ndarray,
        top_ks: np.ndarray,
        top_ps: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, State]:
        """R streams' next characters in one call: row r draws and steps ``counts[r]`` characters
        (with noise rows ``noise[r, :counts[r]]`` of (R, K, V) and its own settings), each as
        :meth:`sample` would, bit for bit; the rows still drawing are stepped together.

        Returns the tokens (R, K) (-1 past a row's count), and the logits (R, V) and state after
        each row's last step (new arrays).
        """
        h, c = self._state_arrays(state)
        tokens, logits, h, c = self.engine.module.sample_rows(
            self._cell_code,
            np.ascontiguousarray(logits, np.float32),
            h,
            c,
            self._weights,
            np.ascontiguousarray(noise, np.float32),
            np.ascontiguousarray(counts, np.int64),
            np.ascontiguousarray(temperatures, np.float64),
            np.ascontiguousarray(top_ks, np.int64),
            np.ascontiguousarray(top_ps, np.float64),
        )
        return tokens, logits, (h, c) if self.cell == "lstm" else h

    def _state_arrays(self, state: State) -> tuple[np.ndarray, np.ndarray]:
        """(h, c) as the compiled step takes them: C-contiguous float32; c is h for a cell
        without a cell state (not read)."""
        if self.cell == "lstm":
            h, c = (np.ascontiguousarray(part, np.float32) for part in state)
            return h, c
        h = np.ascontiguousarray(state, np.float32)
        return h, h
