"""What a model folder is, without torch: its file names, the cells, and the error for a bad one.

Importing this costs no torch import, so code that only lists or describes models (the app's
start-up, the zoo) stays light; :mod:`rnn_demo.model` builds and loads the networks.
"""

from __future__ import annotations

from huggingface_hub import constants

CELLS = ("rnn", "gru", "lstm")
WEIGHTS_NAME = constants.SAFETENSORS_SINGLE_FILE  # "model.safetensors"
CONFIG_NAME = constants.CONFIG_NAME  # "config.json"


class CheckpointError(ValueError):
    """A model folder or Hub repo cannot be loaded (missing, truncated or inconsistent files)."""
