"""Fast single-character steps for generation, for one stream or many at once.

``CharRNN.forward`` is built for training: whole sequences through torch's fused layers. For
generation it runs one character at a time, where the fixed cost of each call dominates
(torch.lstm spends ~0.7 ms on a single step of a 2x128 LSTM on this CPU). :class:`Stepper`
snapshots the model's weights as float32 NumPy arrays, in the few matrices one step needs, and
does the arithmetic of each cell directly:

* in NumPy, not torch: at these sizes a step is dozens of small calls, and a NumPy call costs
  about 1 µs where a torch call costs 3-5 µs. The products are faster too on this machine's
  CPU (AMD EPYC): one thread of NumPy's OpenBLAS does a (1, 512) @ (512, 2048) product in
  ~88 µs, torch.mm in ~112 µs (``python -m benchmarks.engine_choices`` measures this and the
  figures below);
* the first layer's input part, ``W_ih embed(c) + b``, depends only on the character, so it
  is precomputed for the whole vocabulary: a step starts with a row lookup, not a product;
* above the first layer, the input and recurrent parts are one product over ``[x, h]``;
* every gate of a layer goes through one ``tanh`` call: sigmoid(x) = (1 + tanh(x / 2)) / 2,
  and the columns of the gates that take a sigmoid are stored halved (exact in floating
  point); the LSTM's gates are stored in the order i, f, o, g so the sigmoid ones are one slice;
* a batch of states is stepped together, so several streams share each call.

Batch invariance: a row's result must not depend on how many other rows share the step, or
a request served in a batch would not give the text it gives alone. A plain matrix product of
the batch does not promise that (BLAS takes another kernel, with another order of sums, for
one row than for many). So every product is ``np.matmul`` of a (B, 1, K) stack of rows with the
(K, N) weight: NumPy runs one vector-matrix product per row, the same call whatever B is. The
elementwise functions compute each element from its own inputs. So row i comes out bit for bit
the same at any batch size; ``tests/test_batching.py`` checks every cell at several sizes.

The state keeps the model's layout ((L, B, H) arrays, and (h, c) for an LSTM);
:func:`state_arrays` and :func:`state_tensors` convert it from and to torch, without copying
what is already a float32 CPU tensor.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

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


@functools.cache
def use_one_blas_thread() -> None:
    """Run NumPy's BLAS (OpenBLAS) on one thread, for the whole process; the first Stepper does it.

    A step's products are small: split over threads, the threads wait for each other more than
    they gain, and when the machine is busy (a server's other threads, other processes) a
    thread that is not scheduled stalls every product. Measured here, with another process
    keeping one of the two cores busy: lstm-h512 took ~11 ms a character with OpenBLAS's two
    threads, ~0.3 ms with one. torch's own threads are not touched.
    """
    ThreadpoolController().select(internal_api="openblas").limit(limits=1)


def _rowwise(rows: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """rows (B, K) @ weight (K, N) -> (B, N), one row at a time: row i depends on row i only, bit
    for bit (see "Batch invariance")."""
    return np.matmul(np.ascontiguousarray(rows)[:, None, :], weight)[:, 0]


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).numpy().copy()


def _halve_sigmoid_columns(matrix: np.ndarray, cell: str, size: int) -> np.ndarray:
    """Columns (last dim, torch's gate order) reordered and scaled for :class:`Stepper`:
    LSTM i, f, g, o -> i/2, f/2, o/2, g; GRU r, z, n -> r/2, z/2, n; RNN unchanged.

    The result is C-contiguous (row-major (K, N)): np.concatenate of transposed views would keep
    their column-major layout, and with it a lstm-h512 step took 656 µs instead of 377 µs here
    (a step reads 12 MB of weights, more than the caches keep between steps, and OpenBLAS streams
    the row-major layout faster).
    """
    if cell == "lstm":
        i, f, g, o = np.split(matrix, 4, axis=-1)
        matrix = np.concatenate([i / 2, f / 2, o / 2, g], axis=-1)
    elif cell == "gru":
        matrix = np.concatenate([matrix[..., : 2 * size] / 2, matrix[..., 2 * size :]], axis=-1)
    return np.ascontiguousarray(matrix)


class Stepper:
    """Steps a CharRNN one character at a time, with its weights as they were when it was made."""

    @torch.inference_mode()
    def __init__(self, model: CharRNN):
        self.cell = model.cell
        self.num_layers = model.num_layers
        self.hidden_size = size = model.hidden_size
        rnn = model.rnn
        if self.cell == "rnn" and rnn.nonlinearity != "tanh":
            raise ValueError("Stepper supports the tanh RNN that CharRNN builds")
        use_one_blas_thread()
        weights = {name: _array(tensor) for name, tensor in rnn.named_parameters()}
        embedding = _array(model.encoder.weight)  # (V, E)
        # Which biases go with the input part: all of them, except GRU's b_hh, which the
        # reset gate multiplies separately.
        joint_bias = self.cell != "gru"

        def input_bias(layer: int) -> np.ndarray:
            bias = weights[f"bias_ih_l{layer}"]
            return bias + weights[f"bias_hh_l{layer}"] if joint_bias else bias

        def gates(matrix: np.ndarray) -> np.ndarray:
            return _halve_sigmoid_columns(matrix, self.cell, size)

        # Every matrix is stored (K, N), N being the gate columns G*H (or the vocabulary).
        # Layer 0: the input part of every character, (V, G*H).
        self.first_input = gates(embedding @ weights["weight_ih_l0"].T + input_bias(0))
        self.first_recurrent = gates(weights["weight_hh_l0"].T)  # (H, G*H)
        self.upper = []  # for layers 1..L-1: (weight, bias)
        for layer in range(1, self.num_layers):
            if joint_bias:  # one product over [x, h]: (2H, G*H)
                stacked = np.concatenate([weights[f"weight_ih_l{layer}"], weights[f"weight_hh_l{layer}"]], axis=1)
                self.upper.append((gates(stacked.T), gates(input_bias(layer))))
            else:
                self.upper.append((gates(weights[f"weight_ih_l{layer}"].T), gates(weights[f"bias_ih_l{layer}"])))
        if self.cell == "gru":  # GRU keeps its recurrent part apart (the reset gate scales it)
            self.recurrent_bias = [gates(weights[f"bias_hh_l{k}"]) for k in range(self.num_layers)]
            self.upper_recurrent = [gates(weights[f"weight_hh_l{k}"].T) for k in range(1, self.num_layers)]
        self._lstm_parts = [slice(k * size, (k + 1) * size) for k in range(4)]  # columns of i, f, o, g
        self.decoder_weight = np.ascontiguousarray(_array(model.decoder.weight).T)  # (H, V)
        self.decoder_bias = _array(model.decoder.bias)

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
        h_all, c_all = state if self.cell == "lstm" else (state, None)
        new_h = np.empty(h_all.shape, np.float32)
        new_c = np.empty(h_all.shape, np.float32) if c_all is not None else None
        below = None  # the output of the layer below, (B, H)
        for layer in range(self.num_layers):
            if self.cell == "gru":
                self._gru_layer(layer, tokens, below, h_all[layer], out=new_h[layer])
            else:
                if layer == 0:
                    gates = self.first_input[tokens] + _rowwise(h_all[0], self.first_recurrent)
                else:
                    weight, bias = self.upper[layer - 1]
                    gates = _rowwise(np.concatenate([below, h_all[layer]], axis=1), weight) + bias
                if self.cell == "rnn":
                    np.tanh(gates, out=new_h[layer])
                else:
                    self._lstm_update(gates, c_all[layer], new_h[layer], new_c[layer])
            below = new_h[layer]
        logits = _rowwise(below, self.decoder_weight) + self.decoder_bias  # (B, V)
        return logits, (new_h, new_c) if new_c is not None else new_h

    def step_tensors(self, tokens: torch.Tensor, hidden: Hidden) -> tuple[torch.Tensor, Hidden]:
        """:meth:`step` for torch tensors (CPU results)."""
        logits, state = self.step(tokens.cpu().numpy(), state_arrays(hidden))
        return torch.from_numpy(logits), state_tensors(state)

    def _lstm_update(self, gates: np.ndarray, c: np.ndarray, h_out: np.ndarray, c_out: np.ndarray) -> None:
        """c' = f * c + i * g, h' = o * tanh(c'), from the gates (i/2, f/2, o/2, g) before activation."""
        np.tanh(gates, out=gates)
        sigmoids = gates[:, : 3 * self.hidden_size]
        sigmoids *= 0.5
        sigmoids += 0.5
        input_gate, forget_gate, output_gate, cell_gate = (gates[:, part] for part in self._lstm_parts)
        np.multiply(forget_gate, c, out=c_out)
        c_out += input_gate * cell_gate
        np.multiply(output_gate, np.tanh(c_out), out=h_out)

    def _gru_layer(self, layer: int, tokens: np.ndarray, below: np.ndarray | None, h: np.ndarray, out: np.ndarray):
        """GRU update (gates r, z, n): n = tanh(i_n + r * (W_hn h + b_hn)), h' = n + z * (h - n)."""
        size = self.hidden_size
        if layer == 0:
            input_part = self.first_input[tokens]  # (B, 3H)
            recurrent_weight = self.first_recurrent
        else:
            weight, bias = self.upper[layer - 1]
            input_part = _rowwise(below, weight) + bias
            recurrent_weight = self.upper_recurrent[layer - 1]
        recurrent_part = _rowwise(h, recurrent_weight) + self.recurrent_bias[layer]  # (B, 3H)
        reset_update = np.tanh(input_part[:, : 2 * size] + recurrent_part[:, : 2 * size])
        reset_update *= 0.5
        reset_update += 0.5
        reset, update = reset_update[:, :size], reset_update[:, size:]
        new = np.tanh(input_part[:, 2 * size :] + reset * recurrent_part[:, 2 * size :])
        np.add(new, update * (h - new), out=out)
