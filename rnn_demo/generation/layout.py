"""The column-panel layout of a weight matrix, in which the compiled product reads it (NumPy only,
so that making a Stepper needs no compiler).

A product's weight matrix W (K, N) is cut into panels of :data:`PANEL` columns, each panel one
contiguous (K, PANEL) block, row-major; the panels follow one another, then come the last
N % PANEL columns, a (K, N % PANEL) block. A panel is one contiguous stretch of memory, read from
start to end once per block of rows (see ``rnn_demo.generation.kernels.add_product``); with the
plain (K, N) layout, the 64 bytes a block needs from each weight row would be N * 4 bytes apart,
all in the same few L1 cache sets, evicting one another.
"""

from __future__ import annotations

import numpy as np

PANEL = 16  # columns of a panel: two 8-lane vectors


def pack_columns(weight: np.ndarray) -> np.ndarray:
    """W (..., K, N) -> its column panels (..., K * N) float32 (see the module's doc)."""
    weight = np.asarray(weight, np.float32)
    *lead, depth, width = weight.shape
    full = width - width % PANEL
    packed = np.empty((*lead, depth * width), np.float32)  # each block written by one copy
    panels = packed[..., : depth * full].reshape(*lead, full // PANEL, depth, PANEL)
    panels[...] = weight[..., :full].reshape(*lead, depth, full // PANEL, PANEL).swapaxes(-3, -2)
    packed[..., depth * full :].reshape(*lead, depth, width - full)[...] = weight[..., full:]
    return packed
