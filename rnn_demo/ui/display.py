"""How models, runs and errors are shown on the page and to API callers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import gradio as gr

from rnn_demo.model.checkpoint import CELLS
from rnn_demo.serving.requests import RequestError
from rnn_demo.serving.streaming import GenerationError, RunStatus
from rnn_demo.serving.training_jobs import TrainingFailed
from rnn_demo.serving.zoo import ModelInfo
from rnn_demo.ui.i18n import ENGLISH, error_text, i18n, server_text

CELL_LABELS = {cell: server_text(f"cell.{cell}", ENGLISH) for cell in CELLS}  # in English: "RNN (hand-written)", ...
# The states shown in the status line, in English (the tables' "status.*" keys hold every language's).
GENERATING, DONE, STOPPED = (server_text(f"status.{state}", ENGLISH) for state in ("generating", "done", "stopped"))


def format_count(count: int) -> str:
    """A parameter count for a label: 25,025 / 58k / 1.09M."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.2f}M"
    if count >= 10_000:
        return f"{count / 1_000:.0f}k"
    return f"{count:,}"


def cell_label(cell: str, language: str | None = None):
    """A cell's name on the page (``cell`` may also be ``"tang"``, the poem model): while the page is
    built (no ``language``), the marker the browser translates; in a handler, the text in ``language``."""
    return i18n(f"cell.{cell}") if language is None else server_text(f"cell.{cell}", language)


def describe_model(info: ModelInfo, language: str = ENGLISH) -> str:
    """One line about a model: name, shape, parameters, validation bits/char."""
    shape = f"{info.num_layers}×{info.hidden_size} {cell_label(info.cell, language)}"
    if info.val_bpc is not None:
        score = server_text("model.validation", language, bpc=info.val_bpc)
    else:
        score = server_text("model.no_validation", language)
    return server_text("model.line", language, name=info.name, shape=shape, params=info.params, score=score)


def status_line(status: RunStatus, language: str = ENGLISH) -> str:
    """The status line under the text (Markdown) in ``language``: the model, the state, the speed,
    skipped characters."""
    state = "done" if status.done else "stopped" if status.stopped else "generating"
    progress = server_text(
        "status.progress",
        language,
        state=server_text(f"status.{state}", language),
        chars=status.new_chars,
        seconds=status.seconds,
        speed=status.chars_per_second,
    )
    parts = [describe_model(status.model, language), progress]
    if status.skipped:
        shown = " ".join(repr(c) for c in status.skipped[:10]) + (" …" if len(status.skipped) > 10 else "")
        parts.append(server_text("status.skipped", language, shown=shown))
    return " · ".join(parts)


def shown_as_gradio_errors(updates: Iterator, language: str = ENGLISH):
    """``updates``, with a bad request or a failed generation or training raised as ``gr.Error`` (its
    one sentence in ``language``, no traceback). Closing this generator closes ``updates``."""
    try:
        yield from updates
    except (RequestError, GenerationError, TrainingFailed) as error:
        raise gr.Error(error_text(error, language)) from None


def answered_or_gradio_error(call: Callable, *args, language: str = ENGLISH):
    """``call(*args)``, with a bad request or a failed load raised as ``gr.Error`` (its one sentence,
    in ``language``)."""
    try:
        return call(*args)
    except (RequestError, GenerationError) as error:
        raise gr.Error(error_text(error, language)) from None
