"""One generation as a stream of text for the page or the API: validation, the model, the pace.

:func:`generate_stream` yields the prompt and the continuation so far every few characters,
each with a :class:`RunStatus`. Bad arguments raise :class:`~rnn_demo.serving.requests.RequestError`;
a model that cannot be loaded, a full scheduler and a failed generation raise
:class:`GenerationError`. Both are one sentence for the user, and the UI shows them as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rnn_demo.model.checkpoint import CheckpointError
from rnn_demo.serving.requests import validate_request
from rnn_demo.serving.zoo import ModelInfo, ModelZoo

if TYPE_CHECKING:
    from rnn_demo.model import CharRNN
    from rnn_demo.serving.batching import BatchScheduler
    from rnn_demo.serving.generation_process import ProcessScheduler

    Scheduler = BatchScheduler | ProcessScheduler

# Send the text every few characters (or after a short while), not every character, so the
# browser repaints smoothly.
YIELD_EVERY_CHARS = 8
YIELD_EVERY_SECONDS = 0.05
# Under load, fewer and longer updates: every update costs the server (and each client) about a
# millisecond of Python whatever its length, so the streams together get at most about this many
# a second (each stream one every max(YIELD_EVERY_SECONDS, running streams / this) seconds; the
# first characters of a stream go at once). Measured by ``python -m benchmarks.many_users``.
MAX_UPDATES_PER_SECOND = 40


class GenerationError(RuntimeError):
    """The generation could not run or went wrong (not the request's fault); one sentence for the user."""


@dataclass(frozen=True)
class RunStatus:
    """Where one generation stands (the page shows it as its status line: rnn_demo.ui.display.status_line)."""

    model: ModelInfo
    new_chars: int = 0
    seconds: float = 0.0
    skipped: str = ""  # distinct prompt characters outside the vocabulary (skipped)
    done: bool = False  # all max_new_chars were generated
    stopped: bool = False  # the Stop button ended it early
    engine_note: str = ""  # why the reference engine serves it, when it does (rnn_demo.generation.engines.note)

    @property
    def finished(self) -> bool:
        return self.done or self.stopped

    @property
    def chars_per_second(self) -> float:
        return self.new_chars / self.seconds if self.seconds > 0 else 0.0


def load_model(zoo: ModelZoo, info: ModelInfo) -> CharRNN:
    """The weights of a served model; GenerationError when its files cannot be loaded."""
    try:
        return zoo.load(info.cell, info.hidden_size)
    except CheckpointError as error:
        raise GenerationError(f"The model {info.name} could not be loaded: {error}") from None


def generate_stream(
    zoo: ModelZoo,
    prompt,
    cell,
    hidden_size,
    temperature,
    max_new_chars,
    top_k,
    top_p,
    seed,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.perf_counter,
    scheduler: Scheduler | None = None,
) -> Iterator[tuple[str, RunStatus]]:
    """Yield (prompt + continuation so far, RunStatus) every few characters, and once at the end.

    The first update is the prompt alone; the last one has ``status.done`` set and the whole text
    (or ``status.stopped``, when ``should_stop()`` turned true first: it is asked after every
    character, or with a ``scheduler`` after every chunk of characters it hands over).
    With a ``scheduler`` the generation is stepped together with the others running on the
    same model; the text is the same either way. Closing the iterator ends the generation.
    Raises RequestError for bad arguments, GenerationError when the model cannot be loaded, the
    scheduler is full or the generation fails.
    """
    from rnn_demo.generation import engines
    from rnn_demo.generation.sampling import encode_prompt, stream
    from rnn_demo.serving.batching import GenerationFailed, SchedulerFull

    request = validate_request(zoo, prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed)
    info = request.model
    model = load_model(zoo, info)
    started = clock()
    settings = dict(temperature=request.temperature, top_k=request.top_k, top_p=request.top_p, seed=request.seed)
    if scheduler is None:
        engine = engines.current()  # one engine for the whole text
        pieces_out = stream(model, request.prompt, request.max_new_chars, **settings, engine=engine)  # char by char
        engine_note = lambda: engines.note(engine)
    else:
        try:
            generation = scheduler.submit(model, request.prompt, request.max_new_chars, **settings)
        except SchedulerFull as error:
            raise GenerationError(f"The server is busy ({error}); try again in a moment.") from None
        except GenerationFailed as error:  # the generation process could not be started
            raise GenerationError(f"The generation failed: {error}") from None
        pieces_out = generation.chunks(
            min_chars=YIELD_EVERY_CHARS,
            max_wait=YIELD_EVERY_SECONDS,
            pace=lambda: scheduler.active_count() / MAX_UPDATES_PER_SECOND,
        )
        engine_note = lambda: generation.engine_note  # set when the generation starts
    status = RunStatus(info, skipped=encode_prompt(model, request.prompt).skipped)
    pieces = [request.prompt]
    new_chars = unsent = 0
    last_sent = started
    stopped = False
    try:  # closing this generator (Stop, a client's cancel or disconnect) closes pieces_out: no work left behind
        yield request.prompt, status
        for piece in pieces_out:
            pieces.append(piece)
            new_chars += len(piece)
            unsent += len(piece)
            if should_stop():
                stopped = True
                break
            now = clock()
            if unsent >= YIELD_EVERY_CHARS or now - last_sent >= YIELD_EVERY_SECONDS:
                status = RunStatus(info, new_chars, now - started, status.skipped, engine_note=engine_note())
                yield "".join(pieces), status
                unsent, last_sent = 0, now
    except GenerationFailed as error:
        raise GenerationError(f"The generation failed: {error}") from None
    finally:
        pieces_out.close()
    seconds = clock() - started
    yield "".join(pieces), RunStatus(
        info, new_chars, seconds, status.skipped, done=not stopped, stopped=stopped, engine_note=engine_note()
    )
