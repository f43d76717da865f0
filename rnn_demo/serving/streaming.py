"""One generation as a stream of text for the page or the API: validation, the model, the pace.

:func:`generate_stream` is the one place that paces the text: it yields the prompt and the
continuation so far as it grows, at most every :data:`UPDATE_EVERY_SECONDS` (less often when many
streams run, :data:`MAX_UPDATES_PER_SECOND`), and Gradio streams each value it yields. Bad arguments raise :class:`~rnn_demo.serving.requests.RequestError`; a model
that cannot be loaded and a failed generation raise :class:`GenerationError`. Both are one sentence
for the user, and the UI shows them as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rnn_demo.model.checkpoint import CheckpointError
from rnn_demo.serving.errors import UserError
from rnn_demo.serving.requests import validate_request
from rnn_demo.serving.zoo import ModelInfo, ModelZoo

if TYPE_CHECKING:
    from rnn_demo.generation.engine import Weights
    from rnn_demo.generation.sampling import Allowed
    from rnn_demo.serving.worker import GenerationWorker

# A stream looks at its text (and at Stop) this often, and sends it at most this often: a browser
# repaints smoothly and Stop is answered within this time.
UPDATE_EVERY_SECONDS = 0.05
# All streams together send at most about this many updates a second: an update of a long text costs
# the server about a millisecond whatever its length, time taken from generating, so under load each
# stream is sent less often (``python -m benchmarks.many_users --chars 2000`` measures it).
MAX_UPDATES_PER_SECOND = 40


class GenerationError(UserError, RuntimeError):
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

    @property
    def finished(self) -> bool:
        return self.done or self.stopped

    @property
    def chars_per_second(self) -> float:
        return self.new_chars / self.seconds if self.seconds > 0 else 0.0


def load_weights(zoo: ModelZoo, info: ModelInfo) -> Weights:
    """A served model's engine weights (no torch); GenerationError when its files cannot be loaded."""
    try:
        return zoo.weights(info.cell, info.hidden_size)
    except CheckpointError as error:
        raise GenerationError("The model {model} could not be loaded: {error}", model=info.name, error=error) from None


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
    worker: GenerationWorker,
    should_stop: Callable[[], bool] = lambda: False,
    allowed: Allowed | None = None,
) -> Iterator[tuple[str, RunStatus]]:
    """Yield (prompt + continuation so far, RunStatus) as the text grows, and once at the end.

    The first update is the prompt alone; the last one has ``status.done`` set and the whole text
    (or ``status.stopped``, when ``should_stop()`` turned true first). ``worker`` draws the
    characters, beside the other running generations; ``allowed`` is a constraint on the next
    character (:mod:`rnn_demo.generation.sampling`). Closing the iterator ends the generation.
    Raises RequestError for bad arguments, GenerationError when the model cannot be loaded or the
    generation fails.
    """
    from rnn_demo.generation.sampling import encode_prompt
    from rnn_demo.serving.worker import GenerationFailed

    request = validate_request(zoo, prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed)
    info = request.model
    weights = load_weights(zoo, info)
    started = time.perf_counter()
    settings = (request.temperature, request.top_k, request.top_p, request.seed, allowed)
    try:
        generation = worker.submit(weights, request.prompt, request.max_new_chars, *settings)
    except (ValueError, TypeError) as error:
        raise GenerationError("The generation could not start: {error}", error=error) from None
    skipped = encode_prompt(weights, request.prompt).skipped
    text, stopped, next_update = "", False, started
    try:  # closing this generator (Stop, a client's cancel or disconnect) cancels the generation
        yield request.prompt, RunStatus(info, skipped=skipped)
        while len(text) < request.max_new_chars:
            try:  # wakes when the whole text is there, else every UPDATE_EVERY_SECONDS
                grown = generation.wait(after=request.max_new_chars - 1, timeout=UPDATE_EVERY_SECONDS)
            except GenerationFailed as error:
                raise GenerationError("The generation failed: {error}", error=error) from None
            if len(grown) == request.max_new_chars:
                text = grown
                break
            if should_stop():
                text, stopped = grown, True
                break
            now = time.perf_counter()
            if now >= next_update and len(grown) > len(text):  # the one pace of the page and the API
                text = grown
                next_update = now + max(UPDATE_EVERY_SECONDS, worker.running_count() / MAX_UPDATES_PER_SECOND)
                yield request.prompt + text, RunStatus(info, len(text), now - started, skipped)
    finally:
        generation.cancel()
    status = RunStatus(info, len(text), time.perf_counter() - started, skipped, done=not stopped, stopped=stopped)
    yield request.prompt + text, status
