"""How models, runs and errors are shown on the page and to API callers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import gradio as gr

from rnn_demo.serving.requests import RequestError
from rnn_demo.serving.streaming import GenerationError, RunStatus
from rnn_demo.serving.training_jobs import TrainingFailed
from rnn_demo.serving.zoo import ModelInfo

CELL_LABELS = {"rnn": "RNN (hand-written)", "gru": "GRU", "lstm": "LSTM"}
GENERATING, DONE, STOPPED = "generating…", "done", "stopped"  # states shown in the status line


def format_count(count: int) -> str:
    """A parameter count for a label: 25,025 / 58k / 1.09M."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.2f}M"
    if count >= 10_000:
        return f"{count / 1_000:.0f}k"
    return f"{count:,}"


def describe_model(info: ModelInfo) -> str:
    """One line about a model: name, shape, parameters, validation bits/char."""
    shape = f"{info.num_layers}×{info.hidden_size} {CELL_LABELS[info.cell]}"
    score = f"validation {info.val_bpc:.3f} bits/char" if info.val_bpc is not None else "no validation score"
    return f"**{info.name}** · {shape} · {info.params:,} parameters · {score}"


def status_line(status: RunStatus) -> str:
    """The status line under the text (Markdown): the model, the state, the speed, the engine when it is
    the reference one, skipped characters."""
    state = DONE if status.done else STOPPED if status.stopped else GENERATING
    parts = [
        describe_model(status.model),
        f"{state} {status.new_chars:,} characters in {status.seconds:.2f} s ({status.chars_per_second:,.0f} chars/s)",
    ]
    if status.engine_note:
        parts.append(status.engine_note)
    if status.skipped:
        shown = " ".join(repr(c) for c in status.skipped[:10]) + (" …" if len(status.skipped) > 10 else "")
        parts.append(f"skipped characters the model does not know: {shown}")
    return " · ".join(parts)


def shown_as_gradio_errors(updates: Iterator):
    """``updates``, with a bad request or a failed generation or training raised as ``gr.Error`` (its
    one sentence, no traceback). Closing this generator closes ``updates``."""
    try:
        yield from updates
    except (RequestError, GenerationError, TrainingFailed) as error:
        raise gr.Error(str(error)) from None


def answered_or_gradio_error(call: Callable, *args):
    """``call(*args)``, with a bad request or a failed load raised as ``gr.Error`` (its one sentence)."""
    try:
        return call(*args)
    except (RequestError, GenerationError) as error:
        raise gr.Error(str(error)) from None
