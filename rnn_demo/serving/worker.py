"""The server's generation worker: one thread that steps every running generation together.

Stepping sixteen streams costs little more than stepping one (the Python around a step is shared),
so the server does not step each request alone. :meth:`GenerationWorker.submit` primes a request's
prompt in the caller's thread and hands it to the worker; the worker's thread then, tick after tick,
draws the next character of every running request and steps each model's requests together
(:func:`rnn_demo.generation.sampling.advance`). Each request keeps its own settings, random
generator and constraint, so its text is the one :func:`rnn_demo.generation.sampling.generate`
gives for the same arguments, however many requests run beside it.

A request whose draw fails (a setting or a constraint) ends with its own error, as one sentence;
the requests beside it go on, unchanged. A cancelled request is dropped at the next tick.

The thread sleeps while no request runs. It is a daemon thread, so it ends with the app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rnn_demo.generation.engine import Weights
from rnn_demo.generation.sampling import Allowed, Sampler, advance, check_length, sampler_for


class GenerationFailed(RuntimeError):
    """A request could not go on (the message says why, in one sentence)."""


class Generation:
    """One request in the worker. The consumer reads its text with :meth:`wait` and may
    :meth:`cancel` it; the worker's thread appends to it."""

    def __init__(self, sampler: Sampler, max_new_chars: int, wake: Callable[[], None]):
        self.sampler = sampler
        self.remaining = max_new_chars
        self._wake = wake
        self._condition = threading.Condition()
        self._chars: list[str] = []
        self._wanted = 1  # the length the consumer waits for: the worker wakes it no sooner
        self._cancelled = False
        self.error: str | None = None  # why it failed, once it has

    @property
    def finished(self) -> bool:
        """Every character was drawn, or the request failed or was cancelled."""
        return self.remaining == 0 or self.error is not None or self._cancelled

    def cancel(self) -> None:
        """Stop generating: the worker drops the request at its next tick."""
        with self._condition:
            self._cancelled = True
            self._condition.notify_all()
        self._wake()

    def wait(self, after: int, timeout: float | None) -> str:
        """The whole text so far, once it is longer than ``after`` characters, the request is
        finished, or ``timeout`` seconds have passed. GenerationFailed when the request failed."""
        with self._condition:
            self._wanted = after + 1
            self._condition.wait_for(lambda: len(self._chars) > after or self.finished, timeout)
            if self.error is not None:
                raise GenerationFailed(self.error)
            return "".join(self._chars)

    def _add(self, char: str) -> None:
        with self._condition:
            self._chars.append(char)
            self.remaining -= 1
            if len(self._chars) >= self._wanted or self.remaining == 0:  # waking a thread costs the worker
                self._condition.notify_all()

    def _fail(self, error: Exception) -> None:
        with self._condition:
            self.error = str(error) or type(error).__name__
            self._condition.notify_all()


class GenerationWorker:
    """Runs every generation of the server in one thread (started with the first request)."""

    def __init__(self):
        self._lock = threading.Condition()
        self._running: list[Generation] = []
        self._thread: threading.Thread | None = None

    def submit(
        self,
        weights: Weights,
        prompt: str,
        max_new_chars: int,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        allowed: Allowed | None = None,
    ) -> Generation:
        """Start a generation with a model's engine weights (the zoo keeps one ``Weights`` a model:
        the requests that share it are stepped together). Bad arguments raise here (ValueError,
        TypeError); the prompt is primed in the calling thread, then the worker draws
        ``max_new_chars`` characters."""
        check_length(max_new_chars)
        sampler = sampler_for(weights, prompt, temperature, top_k, top_p, seed, allowed)
        generation = Generation(sampler, max_new_chars, self._notify)
        with self._lock:
            self._running.append(generation)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="generation-worker", daemon=True)
                self._thread.start()
            self._lock.notify()
        return generation

    def running_count(self) -> int:
        """Generations running now (not finished, failed or cancelled)."""
        with self._lock:
            return sum(not generation.finished for generation in self._running)

    def _notify(self) -> None:
        with self._lock:
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._running = [g for g in self._running if not g.finished]
                self._lock.wait_for(lambda: any(not g.finished for g in self._running))
                running = [g for g in self._running if not g.finished]
            self._tick(running)

    @staticmethod
    def _tick(running: list[Generation]) -> None:
        """One character for each running generation, the generations of each model stepped together."""
        by_weights: dict[int, list[Generation]] = {}
        for generation in running:
            by_weights.setdefault(id(generation.sampler.weights), []).append(generation)
        for group in by_weights.values():
            try:
                results = advance([g.sampler for g in group])
            except Exception as error:  # noqa: BLE001 - a failed step ends its model's requests, not the worker
                results = [error] * len(group)
            for generation, result in zip(group, results):
                if isinstance(result, Exception):
                    generation._fail(result)
                else:
                    generation._add(generation.sampler.text[-1])
