"""The model: the recurrent layer from its formula (:mod:`.rnn`), the language model
(:mod:`.char_rnn`), characters <-> ids (:mod:`.tokenizer`) and what a checkpoint folder is
(:mod:`.checkpoint`).

``from rnn_demo.model import CharRNN`` is the public path. The names are imported on first use,
so that reading a checkpoint's description (:mod:`.checkpoint`, no torch) does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CharRNN": "char_rnn",
    "Hidden": "char_rnn",
    "bits_per_char": "char_rnn",
    "RNN": "rnn",
    "CharTokenizer": "tokenizer",
    "CELLS": "checkpoint",
    "CONFIG_NAME": "checkpoint",
    "WEIGHTS_NAME": "checkpoint",
    "CheckpointError": "checkpoint",
}
__all__ = ["CELLS", "CONFIG_NAME", "WEIGHTS_NAME", "CharRNN", "CharTokenizer", "CheckpointError", "Hidden", "RNN", "bits_per_char"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later lookups find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
