"""Who trains next: the server's line of trainings, shared by the page's Train button and ``/train``.

At most ``running`` trainings run at once and at most ``waiting`` wait for their turn, first come
first served. A client (its address, and its browser session) holds at most one place, running or
waiting. A request that finds no place is refused at once with a sentence that says why, and when
to try again. A waiting training holds a place here, in the app, and never one of the server's queue
slots, which ``/generate`` and the views need (Gradio's queue counts every endpoint's waiting jobs
together).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rnn_demo.serving.clients import Client
from rnn_demo.serving.requests import RequestError

# What a run takes beyond its budget, for the estimates only: a run ends within its seconds plus a
# few (tests/test_training_jobs.py checks 10 at most), and the page needs a moment to keep its model.
ENDING_SECONDS = 5.0




@dataclass(eq=False)
class Place:
    """A training's place in the line: waiting until ``started`` is set."""

    client: Client
    seconds: float  # the training's budget, for the line's estimates
    started: float | None = None  # the clock's time when it began to run


class TrainingLine:
    """The line: thread-safe; :meth:`join`, then :meth:`wait_turn` until the place runs, then
    :meth:`leave` (always, also when the training fails or is stopped while waiting)."""

    def __init__(self, running: int, waiting: int, clock: Callable[[], float] = time.monotonic):
        self.running_limit = running
        self.waiting_limit = waiting
        self._clock = clock
        self._changed = threading.Condition()
        self._running: list[Place] = []
        self._waiting: list[Place] = []  # first come first

    def join(self, client: Client, seconds: float) -> Place:
        """A place for ``client``'s training of ``seconds``: running at once when there is room,
        else waiting. RequestError when the client already has a place, or the line is full."""
        with self._changed:
            if any(place.client.is_also(client) for place in self._running + self._waiting):
                raise RequestError(
                    "You already have a training running or waiting: let it end, or stop it, before you start another."
                )
            if len(self._running) >= self.running_limit and len(self._waiting) >= self.waiting_limit:
                raise RequestError(
                    "The server is busy: {running} running and {waiting} waiting, the most it takes. Try again in about {seconds:.0f} s.",
                    running=len(self._running),
                    waiting=len(self._waiting),
                    seconds=self._starts_in(self._waiting[0]) if self._waiting else ENDING_SECONDS,
                )
            place = Place(client, seconds)
            self._waiting.append(place)
            self._start_next()
            return place

    def wait_turn(self, place: Place, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for ``place`` to run; its position then: 0 running, n the
        n-th waiting."""
        with self._changed:
            if place.started is None:
                self._changed.wait(timeout)
            return self.position(place)

    def position(self, place: Place) -> int:
        with self._changed:
            return 0 if place.started is not None else self._waiting.index(place) + 1

    def starts_in(self, place: Place) -> float:
        """About how many seconds until the waiting ``place`` runs (0 once it runs)."""
        with self._changed:
            return 0.0 if place.started is not None else self._starts_in(place)

    def leave(self, place: Place) -> None:
        """Give the place up (the training ended, failed or was stopped); the next one starts."""
        with self._changed:
            for places in (self._running, self._waiting):
                if place in places:
                    places.remove(place)
            self._start_next()

    def __len__(self) -> int:
        with self._changed:
            return len(self._running) + len(self._waiting)

    def _start_next(self) -> None:
        while self._waiting and len(self._running) < self.running_limit:
            place = self._waiting.pop(0)
            place.started = self._clock()
            self._running.append(place)
        self._changed.notify_all()

    def _starts_in(self, place: Place) -> float:
        """Each running place frees its slot at its budget's end; each waiting one ahead takes the
        first slot that frees, for its budget."""
        now = self._clock()
        free = [max(p.started + p.seconds + ENDING_SECONDS - now, 0.0) for p in self._running]
        free += [0.0] * (self.running_limit - len(free))
        heapq.heapify(free)
        for ahead in self._waiting:
            start = heapq.heappop(free)
            if ahead is place:
                return start
            heapq.heappush(free, start + ahead.seconds + ENDING_SECONDS)
        raise ValueError("the place is not waiting in this line")
