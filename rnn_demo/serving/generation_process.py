"""Continuous batching in a process of its own, so a web server's work and the steps run at once.

:class:`rnn_demo.serving.batching.BatchScheduler` steps the concurrent generations of a model together in
one thread. In a web server that thread shares the interpreter (and its lock) with the server's
event loop and request threads, so the steps and the server's Python take turns on one core
(docs/design.md, "Serving many streams"; ``python -m benchmarks.many_users``). A
:class:`ProcessScheduler` runs the same
BatchScheduler in a child process (``python -m rnn_demo.serving.generation_process``), which has a core and
an interpreter to itself, and keeps the consumer's side here: :meth:`ProcessScheduler.submit`
takes the arguments of ``BatchScheduler.submit`` and returns a
:class:`~rnn_demo.serving.batching.Generation` read the same way, with the same text, bit for bit.

Protocol, over a socket pair (``multiprocessing.connection`` messages, so pickles: both ends are
this module, and the socket belongs to the two processes alone):

parent -> child
    ``("settings", max_active, idle_seconds, max_ahead, torch_threads)``, first: the child's
    BatchScheduler and torch (so a process started before its scheduler, see
    ``rnn_demo.serving.process_start``, serves any);
    ``("model", number, config, weights)``: a model's config and its weights as NumPy arrays, sent
    before its first request (the child keeps them: the weights the model had then are served);
    ``("forget", number)`` when the model is gone here;
    ``("submit", request, number, prompt, max_new_chars, temperature, top_k, top_p, seed)``;
    ``("taken", request, count)``: the consumer took ``count`` characters (the child draws at most
    ``max_ahead`` characters beyond what was taken: the back-pressure of the in-process scheduler);
    ``("cancel", request)``.
child -> parent
    ``("out", [(request, text), ...], [(request, error message), ...], [(request, engine note), ...])``:
    new characters, failed requests and what the status line says of the engine of the requests
    that started (``rnn_demo.generation.engines.note``), gathered for up to SEND_EVERY_SECONDS.

The child's messages are read by one thread here, which hands the characters to the requests'
Generation objects. When the child ends (killed, out of memory, a crash), every unfinished request
fails with :class:`~rnn_demo.serving.batching.GenerationFailed` saying so, and the next request starts a
new child. When this process ends, the child reads the end of its socket and ends too.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from multiprocessing.connection import Connection

import numpy as np

from rnn_demo.generation.sampling import SamplingSettings, TokenDraws
from rnn_demo.model import CharRNN
from rnn_demo.serving import process_start
from rnn_demo.serving.batching import (
    IDLE_SECONDS,
    MAX_ACTIVE_PER_MODEL,
    MAX_AHEAD_CHARS,
    BatchScheduler,
    Generation,
    GenerationFailed,
    SchedulerFull,
    check_request,
)

# The child sends what its steps drew at most this often: each message costs both processes some
# Python, and 16 streams step hundreds of times a second. 10 ms adds at most 10 ms to an update
# that comes every 0.05-0.4 s (rnn_demo.serving.streaming's pace).
SEND_EVERY_SECONDS = 0.01


# ---- the parent's side ------------------------------------------------------------------------


class ProcessScheduler:
    """Continuous batching of generations in a child process (started on first use or by
    :meth:`start`; restarted by the next request after it ended).

    Args:
        max_active: requests generating at once per model; :meth:`submit` refuses more.
        idle_seconds: a model's thread in the child ends after this long without requests.
        max_ahead: characters a request may be drawn ahead of what its consumer has taken.
        torch_threads: torch's threads in the child (its steps are NumPy, on one BLAS thread).
    """

    def __init__(
        self,
        max_active: int = MAX_ACTIVE_PER_MODEL,
        idle_seconds: float = IDLE_SECONDS,
        max_ahead: int = MAX_AHEAD_CHARS,
        torch_threads: int = 1,
    ):
        self.max_active = max_active
        self.idle_seconds = idle_seconds
        self.max_ahead = max_ahead
        self.torch_threads = torch_threads
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._model_numbers: weakref.WeakKeyDictionary[CharRNN, int] = weakref.WeakKeyDictionary()
        self._numbers = itertools.count()  # model numbers
        self._request_numbers = itertools.count()
        # Numbers of models gone here, for the child to drop at the next request. A finalizer only
        # appends to it: it runs when the garbage collector does, in whatever thread, perhaps
        # while that thread holds one of the locks here.
        self._models_gone: collections.deque[int] = collections.deque()

    def preload(self, model: CharRNN) -> None:
        """Send ``model``'s weights to the child now, so that its first request does not wait for them."""
        child = self._running_child()
        self._forget_models_gone(child)
        child.send_model(model, self._model_number(model))

    def submit(
        self,
        model: CharRNN,
        prompt: str,
        max_new_chars: int,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Generation:
        """What ``BatchScheduler.submit`` does, with the prompt run and the steps taken in the child.

        Raises ValueError or TypeError for bad arguments (here, before anything is sent),
        SchedulerFull when the model has ``max_active`` unfinished requests.
        """
        settings = check_request(model, prompt, max_new_chars, temperature, top_k, top_p, seed)
        if max_new_chars == 0:
            return Generation(settings, None, 0, self.max_ahead)
        request = (model, self._model_number(model), prompt, settings, max_new_chars, seed)
        try:
            return self._submit_to_child(*request)
        except GenerationFailed:  # the child ended just now: once more, with a new one
            return self._submit_to_child(*request)

    def active_count(self) -> int:
        """Unfinished requests, over all models."""
        with self._lock:
            child = self._child
        return child.active_count() if child is not None else 0

    def child_pid(self) -> int | None:
        """The child's process id, None while there is none."""
        with self._lock:
            return self._child.process.pid if self._child is not None else None

    def close(self) -> None:
        """End the child (its unfinished requests fail); a later request starts a new one."""
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.close()

    def _submit_to_child(self, model, number, prompt, settings, max_new_chars, seed) -> Generation:
        child = self._running_child()
        self._forget_models_gone(child)
        generation = _RemoteGeneration(child, next(self._request_numbers), settings, max_new_chars, self.max_ahead)
        child.submit(model, number, generation, prompt, seed, self.max_active)
        return generation

    def _running_child(self) -> _Child:
        """The child, started if there is none. Raises GenerationFailed when it cannot be started."""
        with self._lock:
            if self._child is None or self._child.ended is not None:
                try:
                    self._child = _Child(self)
                except OSError as error:  # no memory, no processes or files left, ...
                    raise GenerationFailed(f"could not start the generation process: {error}") from None
            return self._child

    def _child_ended(self, child: _Child) -> None:
        with self._lock:
            if self._child is child:
                self._child = None

    def _model_number(self, model: CharRNN) -> int:
        with self._lock:
            number = self._model_numbers.get(model)
            if number is None:
                number = self._model_numbers[model] = next(self._numbers)
                weakref.finalize(model, self._models_gone.append, number)
            return number

    def _forget_models_gone(self, child: _Child) -> None:
        while True:
            try:
                number = self._models_gone.popleft()
            except IndexError:  # none left (another thread may have taken the last one)
                return
            child.forget_model(number)


class _RemoteGeneration(Generation):
    """A request served by the child: filled by the reader thread; it tells the child what its
    consumer does."""

    def __init__(self, child: _Child, request: int, settings: SamplingSettings, max_new_chars: int, max_ahead: int):
        super().__init__(settings, None, max_new_chars, max_ahead)
        self._child = child
        self._request = request
        self._model_number: int | None = None  # set when submitted

    def _consumer_took(self, count: int, was_full: bool) -> None:
        if not self.finished:
            self._child.send(("taken", self._request, count))

    def _consumer_cancelled(self) -> None:
        self._child.forget_request(self._request)
        self._child.send(("cancel", self._request))


class _Child:
    """One child process, its socket, and the unfinished requests it serves."""

    def __init__(self, scheduler: ProcessScheduler):
        self.scheduler = scheduler
        self.process, self._socket = process_start.take_early() or process_start.spawn()
        self.connection = Connection(os.dup(self._socket.fileno()))
        self._send_lock = threading.Lock()  # one message at a time, in the order they are sent
        self._lock = threading.Lock()  # guards the fields below
        self.requests: dict[int, _RemoteGeneration] = {}  # unfinished, by request number
        self.per_model: dict[int, int] = {}  # unfinished requests per model number
        self.models_sent: set[int] = set()
        self.ended: str | None = None  # why the child is gone, once it is
        self.send((
            "settings",
            2 * scheduler.max_active,  # the limit is kept here; see ProcessScheduler
            scheduler.idle_seconds,
            scheduler.max_ahead,
            scheduler.torch_threads,
        ))
        self.reader = threading.Thread(target=self._read, name="process-batching-reader", daemon=True)
        self.reader.start()

    def send(self, message: tuple) -> None:
        """Send to the child. A child that is gone is reported by the reader thread (it fails the
        unfinished requests), so a failed send says nothing."""
        with self._send_lock:
            self._send(message)

    def _send(self, message: tuple) -> None:
        try:
            self.connection.send(message)
        except (OSError, ValueError):  # the child ended (broken pipe), or the socket was closed here
            pass

    def send_model(self, model: CharRNN, number: int) -> None:
        """Send the model's weights unless the child has them (under the send lock)."""
        with self._send_lock:
            self._send_model_locked(model, number)

    def _send_model_locked(self, model: CharRNN, number: int) -> None:
        with self._lock:
            if number in self.models_sent:
                return
            self.models_sent.add(number)
        self._send(("model", number, *_model_message(model)))

    def submit(self, model: CharRNN, number: int, generation: _RemoteGeneration, prompt: str, seed, max_active: int):
        with self._lock:
            if self.ended is not None:
                raise GenerationFailed(self.ended)
            if self.per_model.get(number, 0) >= max_active:
                raise SchedulerFull(f"{model.cell}-h{model.hidden_size} is already generating {max_active} texts")
            generation._model_number = number
            self.requests[generation._request] = generation
            self.per_model[number] = self.per_model.get(number, 0) + 1
        settings = generation.settings
        with self._send_lock:  # the model's weights go before its first request
            self._send_model_locked(model, number)
            self._send((
                "submit", generation._request, number, prompt, generation.max_new_chars,
                settings.temperature, settings.top_k, settings.top_p, seed,
            ))

    def forget_request(self, request: int) -> None:
        """The request is finished here: it no longer counts."""
        with self._lock:
            generation = self.requests.pop(request, None)
            if generation is not None:
                self.per_model[generation._model_number] -= 1

    def forget_model(self, number: int) -> None:
        with self._lock:
            if number not in self.models_sent:
                return
            self.models_sent.discard(number)
        self.send(("forget", number))

    def active_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        """End the child: it reads the end of its socket and exits (killed if it has not in 5 s)."""
        try:
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes both processes' reads with end-of-file
        except OSError:
            pass
        self.reader.join()

    def _read(self) -> None:
        try:
            while True:
                _, texts, failures, notes = self.connection.recv()
                for request, note in notes:
                    generation = self.requests.get(request)
                    if generation is not None:
                        generation.engine_note = note
                for request, text in texts:
                    generation = self.requests.get(request)
                    if generation is not None:
                        generation._deliver(text)
                        if generation.remaining <= 0:
                            self.forget_request(request)
                for request, message in failures:
                    generation = self.requests.get(request)
                    if generation is not None:
                        self.forget_request(request)
                        generation._fail(message)
        except (EOFError, OSError):
            pass
        self._end()

    def _end(self) -> None:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        with self._lock:
            self.ended = f"the generation process stopped (exit code {code}); try again"
            orphans = list(self.requests.values())
            self.requests.clear()
            self.per_model.clear()
        for generation in orphans:
            generation._fail(self.ended)
        self.connection.close()
        self._socket.close()
        self.scheduler._child_ended(self)


def _model_message(model: CharRNN) -> tuple[dict, dict[str, np.ndarray]]:
    """A model's config and weights (copies), for the child to rebuild it."""
    weights = {name: tensor.detach().to("cpu").numpy().copy() for name, tensor in model.state_dict().items()}
    return dict(model._hub_mixin_config), weights


# ---- the child's side -------------------------------------------------------------------------


class _Outbox:
    """What the steps drew and which requests failed, sent to the parent by a thread of its own
    at most every SEND_EVERY_SECONDS."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self._condition = threading.Condition()
        self._texts: dict[int, list[str]] = {}
        self._failures: list[tuple[int, str]] = []
        self._notes: list[tuple[int, str]] = []
        threading.Thread(target=self._send_forever, name="process-batching-sender", daemon=True).start()

    def add(self, request: int, text: str) -> None:
        with self._condition:
            pieces = self._texts.get(request)
            if pieces is not None:
                pieces.append(text)
                return
            self._texts[request] = [text]
            self._condition.notify()

    def fail(self, request: int, message: str) -> None:
        with self._condition:
            self._failures.append((request, message))
            self._condition.notify()

    def note(self, request: int, note: str) -> None:
        """What the status line says of the request's engine (sent before its first characters)."""
        if note:
            with self._condition:
                self._notes.append((request, note))

    def _send_forever(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._texts or self._failures)
                texts, self._texts = self._texts, {}
                failures, self._failures = self._failures, []
                notes, self._notes = self._notes, []
            texts = [(request, "".join(pieces)) for request, pieces in texts.items()]
            try:
                self.connection.send(("out", texts, failures, notes))
            except (OSError, ValueError):  # the parent is gone: the main thread sees it too and ends
                return
            time.sleep(SEND_EVERY_SECONDS)


class _RelayedGeneration(Generation):
    """A request in the child: its characters go to the outbox, and ``_buffered`` counts those
    drawn and not yet taken by the consumer in the parent."""

    def __init__(self, outbox: _Outbox, request: int, settings, draws: TokenDraws, max_new_chars: int, max_ahead: int):
        super().__init__(settings, draws, max_new_chars, max_ahead)
        self._outbox = outbox
        self._request = request

    def _deliver(self, text: str) -> None:
        with self._condition:
            first = self.remaining == self.max_new_chars
            self._buffered += len(text)
            self.remaining -= len(text)
            if self.remaining <= 0:
                self._finished = True
        if first:  # the engine's note goes with (or before) the first characters
            self._outbox.note(self._request, self.engine_note)
        self._outbox.add(self._request, text)

    def _fail(self, error: BaseException | str) -> None:
        super()._fail(error)
        self._outbox.fail(self._request, self._error)

    def taken(self, count: int) -> None:
        """The consumer took ``count`` characters."""
        with self._condition:
            was_full = self._buffered >= self.max_ahead
            self._buffered -= count
        if was_full:
            self._wake_scheduler()


def _rebuild(config: dict, weights: dict[str, np.ndarray]) -> CharRNN:
    import torch

    model = CharRNN(**config)
    model.load_state_dict({name: torch.from_numpy(array) for name, array in weights.items()})
    return model.eval()


def serve(connection: Connection, scheduler: BatchScheduler) -> None:
    """The child's main loop: run the parent's messages until its socket ends."""
    outbox = _Outbox(connection)
    models: dict[int, CharRNN] = {}
    requests: dict[int, _RelayedGeneration] = {}
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        kind, request = message[0], message[1]
        if kind == "taken":
            generation = requests.get(request)
            if generation is not None:
                generation.taken(message[2])
        elif kind == "cancel":
            generation = requests.pop(request, None)
            if generation is not None:
                generation.cancel()
        elif kind == "submit":
            for number in [number for number, generation in requests.items() if generation.finished]:
                del requests[number]
            _, _, number, prompt, max_new_chars, temperature, top_k, top_p, seed = message
            try:
                model = models.get(number)
                if model is None:
                    raise LookupError(f"the generation process has no model {number}")
                settings = SamplingSettings(temperature, top_k, top_p)
                draws = TokenDraws(seed, model.vocab_size, max_new_chars)
                generation = _RelayedGeneration(outbox, request, settings, draws, max_new_chars, scheduler.max_ahead)
                scheduler.start(model, generation, prompt)  # primes here, in this thread
            except Exception as error:  # noqa: BLE001 - this request fails, the child goes on
                outbox.fail(request, f"{type(error).__name__}: {error}")
            else:
                requests[request] = generation
        elif kind == "model":
            models[request] = _rebuild(*message[2:])
            scheduler.preload(models[request])  # its Stepper now, not in its first request
        elif kind == "forget":
            models.pop(request, None)


def _log_to_stderr() -> None:
    """The ``rnn_demo`` log (where the engine stands) on this process's stderr, a line per message."""
    logger = logging.getLogger("rnn_demo")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The generation process of rnn_demo.serving.generation_process (not run by hand).")
    parser.add_argument("--fd", type=int, required=True, help="the socket to the parent")
    args = parser.parse_args(argv)
    from rnn_demo.generation import engines

    _log_to_stderr()
    engines.start_compiling()  # in the background from the start; the reference engine serves meanwhile
    import torch

    connection = Connection(args.fd)
    try:  # the parent's first message: ("settings", max_active, idle_seconds, max_ahead, torch_threads)
        _, max_active, idle_seconds, max_ahead, torch_threads = connection.recv()
    except (EOFError, OSError):  # the parent ended (or never took this process): nothing to do
        os._exit(0)
    torch.set_num_threads(torch_threads)
    serve(connection, BatchScheduler(max_active, idle_seconds, max_ahead))
    # The parent is gone or closed the socket: nothing is left to do or to save. Exit at once,
    # without the interpreter's shutdown, which could meet a model thread in the middle of a step
    # (seen: SIGABRT from finalizing while a daemon thread ran a torch call).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
