"""What a model folder is, without torch: its file names, the cells, and the error for a bad one.

Importing this costs no torch import, so code that only lists or describes models (the app's
start-up, the zoo) stays light; :mod:`rnn_demo.model` builds and loads the networks.
"""

from __future__ import annotations

import os

from huggingface_hub import constants

CELLS = ("rnn", "gru", "lstm")
WEIGHTS_NAME = constants.SAFETENSORS_SINGLE_FILE  # "model.safetensors"
CONFIG_NAME = constants.CONFIG_NAME  # "config.json"


class CheckpointError(ValueError):
    """A model folder or Hub repo cannot be loaded (missing, truncated or inconsistent files)."""


# A training run writes its best weights with their validation loss (nats/char) and step in the
# safetensors header (``RunFolder.save_best``): the score travels with the weights in one rename, so
# a run killed at any moment leaves weights and score that agree.
VAL_LOSS_KEY = "val_loss"
STEP_KEY = "step"


def weights_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string pairs in a safetensors file's header, read without torch ({} when it has none).
    OSError or safetensors' error when the file is missing or damaged."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as file:
        return dict(file.metadata() or {})
