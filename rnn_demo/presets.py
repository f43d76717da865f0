"""Training recipes of the shipped models: ``python -m train --preset lstm-512``.

Each preset is a set of :class:`rnn_demo.training.TrainConfig` fields; flags given next to
``--preset`` override them. The step counts are fixed (not a time budget), so a recipe means the
same training on any machine; the shipped models were trained with exactly these settings (each
``models/*/metrics.json`` holds the command, the device and the time it took).

How the regularization grows with size: the 64-unit models underfit and get none; from 128 units
on, dropout and weight decay; from 256 on, AWD-LSTM's set (DropConnect on the recurrent weights,
variational dropout, embedding dropout and, for gated cells, tied embedding/output weights).
``benchmarks/regularization.py`` measures what each of those contributes.
"""

from __future__ import annotations

# Shared by every preset: long BPTT windows and large batches (a GPU's sweet spot; on a CPU the
# same recipe is simply slower), AdamW with warmup and cosine decay, gradient clipping.
_COMMON = {
    "seq_len": 128,
    "batch_size": 64,
    "lr": 2e-3,
    "warmup_steps": 200,
    "min_lr_ratio": 0.05,
    "grad_clip": 1.0,
    "seed": 0,
}

# Regularization per (cell, hidden size).
_REGULARIZATION = {
    64: {"dropout": 0.0, "weight_decay": 0.0},
    128: {"dropout": 0.1, "weight_decay": 0.1},
    256: {"dropout": 0.25, "weight_drop": 0.25, "embedding_dropout": 0.05, "variational_dropout": True,
          "tie_weights": True, "weight_decay": 0.1},
    512: {"dropout": 0.4, "weight_drop": 0.4, "embedding_dropout": 0.1, "variational_dropout": True,
          "tie_weights": True, "weight_decay": 0.1},
}
# The plain tanh RNN has a quarter of an LSTM's recurrent weights and overfits far later.
_RNN_REGULARIZATION = {
    64: {"dropout": 0.0, "weight_decay": 0.0},
    128: {"dropout": 0.05, "weight_decay": 0.1},
    256: {"dropout": 0.15, "weight_drop": 0.1, "variational_dropout": True, "weight_decay": 0.1},
    512: {"dropout": 0.25, "weight_drop": 0.2, "embedding_dropout": 0.05, "variational_dropout": True,
          "tie_weights": True, "weight_decay": 0.1},
}

# Optimisation steps per preset (64 x 128 = 8,192 characters each; tiny shakespeare's training
# split is 1,003,854 characters, so 1,000 steps are about 8 epochs).
_STEPS = {
    ("rnn", 64): 4000, ("rnn", 128): 4000, ("rnn", 256): 4000, ("rnn", 512): 4000,
    ("gru", 64): 4000, ("gru", 128): 4000, ("gru", 256): 4000, ("gru", 512): 4000,
    ("lstm", 64): 4000, ("lstm", 128): 4000, ("lstm", 256): 4000, ("lstm", 512): 4000,
}
EVALUATIONS_PER_RUN = 10


def _preset(cell: str, hidden_size: int) -> dict:
    regularization = (_RNN_REGULARIZATION if cell == "rnn" else _REGULARIZATION)[hidden_size]
    steps = _STEPS[(cell, hidden_size)]
    return {
        "cell": cell,
        "hidden_size": hidden_size,
        "num_layers": 2,
        **_COMMON,
        **regularization,
        "max_steps": steps,
        "eval_every": max(steps // EVALUATIONS_PER_RUN, 1),
    }


PRESETS: dict[str, dict] = {f"{cell}-{size}": _preset(cell, size) for cell, size in _STEPS}


def preset_settings(name: str) -> dict:
    """The TrainConfig fields of preset ``name`` (a copy); KeyError names the known presets."""
    if name not in PRESETS:
        raise KeyError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dict(PRESETS[name])
