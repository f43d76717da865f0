"""Training recipes of the shipped models: ``python -m train --preset lstm-512``.

A preset is the set of :class:`rnn_demo.training.config.TrainConfig` fields a shipped model in
``models/`` was trained with; flags given next to ``--preset`` override them. Each
``models/*/metrics.json`` holds the exact command, the device and the time it took, and a test
checks that every preset agrees with it.

Presets count optimisation steps, so a recipe means the same training on any machine. The models
trained on this project's 2-core CPU ran under a time budget (``--time-budget``); their presets fix
the number of steps those runs reached instead, so a rerun follows the same schedule to within the
small difference between a clock-driven and a step-driven cosine decay.

The 512-unit RNN and GRU were trained on a GPU with larger batches; a time limit on the GPU machine
stopped them late in their schedule (rnn-512 at step 3297 of 3700, gru-512 at 2470 of 2500), and the
models shipped are their best checkpoints. Their presets are the full recipes.
"""

from __future__ import annotations

# The text every shipped model was trained on: the repository's copy of tiny shakespeare (the
# Hub dataset's exact text, data/README.md), relative to the repository, where the commands run.
SHIPPED_TEXT = "data/tinyshakespeare.txt"
# The Tang poems in Simplified script, split by poem into train/validation/test files (data/README.md).
TANG_TEXT = "data/tang"
# The small-batch recipe of the CPU-trained models (the TrainConfig defaults when they were trained).
_CPU = {
    "data": SHIPPED_TEXT,
    "num_layers": 2,
    "seq_len": 64,
    "batch_size": 16,
    "lr": 3e-3,
    "warmup_steps": 50,
    "min_lr_ratio": 0.1,
    "weight_decay": 0.0,
    "grad_clip": 1.0,
    "eval_every": 1000,
    "seed": 0,
}
# The GPU recipe: longer schedules with more warm-up, weight decay, a lower final learning rate.
_GPU = {
    "data": SHIPPED_TEXT,
    "num_layers": 2,
    "lr": 2e-3,
    "warmup_steps": 200,
    "min_lr_ratio": 0.05,
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    "seed": 0,
}

PRESETS: dict[str, dict] = {
    "rnn-64": {**_CPU, "cell": "rnn", "hidden_size": 64, "max_steps": 12949},
    "rnn-128": {**_CPU, "cell": "rnn", "hidden_size": 128, "max_steps": 11011},
    "rnn-256": {**_CPU, "cell": "rnn", "hidden_size": 256, "dropout": 0.1, "max_steps": 8827},
    "rnn-512": {**_GPU, "cell": "rnn", "hidden_size": 512, "dropout": 0.2, "seq_len": 64, "batch_size": 32,
                "max_steps": 3700, "eval_every": 370},
    "gru-64": {**_CPU, "cell": "gru", "hidden_size": 64, "max_steps": 4062},
    "gru-128": {**_CPU, "cell": "gru", "hidden_size": 128, "dropout": 0.1, "max_steps": 8713},
    "gru-512": {**_GPU, "cell": "gru", "hidden_size": 512, "dropout": 0.35, "variational_dropout": True,
                "weight_drop": 0.25, "embedding_dropout": 0.05, "seq_len": 128, "batch_size": 64,
                "max_steps": 2500, "eval_every": 250},
    "lstm-64": {**_CPU, "cell": "lstm", "hidden_size": 64, "max_steps": 9189},
    "lstm-128": {**_CPU, "cell": "lstm", "hidden_size": 128, "dropout": 0.1, "max_steps": 10249},
    "lstm-256": {**_CPU, "cell": "lstm", "hidden_size": 256, "dropout": 0.2, "batch_size": 32, "max_steps": 7684},
    "lstm-512": {**_CPU, "cell": "lstm", "hidden_size": 512, "dropout": 0.25, "batch_size": 32, "max_steps": 5998},
    # The Tang-poem model (data/README.md): 5,000 steps of the CPU recipe on the poems.
    "tang-lstm-256": {**_CPU, "data": TANG_TEXT, "cell": "lstm", "hidden_size": 256, "dropout": 0.1, "batch_size": 32,
                      "max_steps": 5000},
}


def preset_settings(name: str) -> dict:
    """The TrainConfig fields of preset ``name`` (a copy); KeyError names the known presets."""
    if name not in PRESETS:
        raise KeyError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dict(PRESETS[name])
