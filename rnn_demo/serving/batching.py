"""Continuous batching: the generations running at once on one model share each step.

Stepping one stream costs almost as much as stepping sixteen (the weights are read once per
step either way), so a server that steps each request alone serves many users at about the
speed of one. A :class:`BatchScheduler` runs one background thread per model; each tick that
thread

1. takes in the requests that arrived since the last tick (their prompts were already run
   through the model, "prefilled", in the caller's thread, exactly as ``rnn_demo.generation.sampling``
   does it) and drops the cancelled ones;
2. takes the random numbers of each request's next draws from its own seeded
   ``torch.Generator`` (``TokenDraws.noise_rows``, the numbers ``sample_steps`` uses), for
   up to :data:`MAX_TICK_CHARS` characters (see :func:`tick_chars`);
3. draws and steps those characters for all of them in one compiled call,
   ``Stepper.sample_rows``: each time, every request's distribution (as
   ``next_token_distribution`` computes it, with its own settings), its draw (as
   ``choose_tokens``) and one batch-invariant step of the requests still drawing (see "Batch
   invariance" in ``rnn_demo.generation.stepper``);
4. hands each request its new characters.

So a request gives, bit for bit, the text that ``rnn_demo.generation.sampling.generate`` gives for the same
settings, seed and engine (chosen when it starts, kept to its end), however many others share its steps. Requests join and leave between ticks.
Characters wait in a per-request buffer; the consumer (the web handler) takes them in chunks.

The thread sleeps on a condition variable while its model has no requests, and ends after
``idle_seconds`` of that; the next request starts a new one. An error in one request (its
sampling settings, its generator) ends that request with :class:`GenerationFailed` and the
others go on.

The web app runs this scheduler in a process of its own: see ``rnn_demo.serving.generation_process``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator

import numpy as np

from rnn_demo.generation import engines
from rnn_demo.generation.engines import Engine
from rnn_demo.generation.sampling import SamplingSettings, TokenDraws, check_length, check_seed, encode_prompt, prime
from rnn_demo.generation.stepper import State, Stepper
from rnn_demo.model import CharRNN

MAX_ACTIVE_PER_MODEL = 64  # requests generating at once on one model; more are refused
IDLE_SECONDS = 10.0  # a model's thread ends after this long without requests
# A request is drawn at most this many characters ahead of what its consumer has taken: the
# text streams at the pace the client reads it, Stop stops near what the user sees, and a
# client that stops reading stops costing steps. It also bounds a paced update (see
# Generation.chunks): a stream updated every 0.4 s (16 streams under MAX_UPDATES_PER_SECOND) runs
# at most 512 / 0.4 = 1,280 chars/s, above what 16 streams of a shipped model get each
# (``python -m benchmarks.many_users``).
MAX_AHEAD_CHARS = 512
# A tick draws and steps up to this many characters of each request in one compiled call
# (Stepper.sample_rows), so that the Python work of a tick (taking in requests, handing out the
# characters) is shared by several characters. It bounds how long a tick takes, and so how long a
# new or cancelled request waits for the one under way (tens of milliseconds for 16 rows of the
# largest shipped models).
MAX_TICK_CHARS = 16


class SchedulerFull(RuntimeError):
    """The model already has the most requests it takes at once."""


class GenerationFailed(RuntimeError):
    """The scheduler could not continue this request (the message says why)."""


class Generation:
    """One request in the scheduler. The consumer reads characters with :meth:`take` or
    :meth:`chunks` and may :meth:`cancel` it; the scheduler's thread fills it."""

    def __init__(
        self,
        settings: SamplingSettings,
        draws: TokenDraws | None,
        max_new_chars: int,
        max_ahead: int = MAX_AHEAD_CHARS,
    ):
        self.settings = settings
        self.draws = draws
        self.max_new_chars = max_new_chars
        self.max_ahead = max_ahead
        self.remaining = max_new_chars  # characters still to draw (the scheduler's count)
        # (1, V): what the next character is drawn from, and the state after the characters drawn
        # so far (engine arrays). Set by the priming; while the worker steps the same requests tick
        # after tick it keeps their rows stacked, and writes them back here when the batch changes.
        self.logits: np.ndarray | None = None
        self.state: State | None = None
        # The engine that computes it, chosen when it starts and kept to the end, and what the
        # status line says of it (rnn_demo.generation.engines.note): set by BatchScheduler.start.
        self.engine: Engine | None = None
        self.engine_note = ""
        self._wake_scheduler: Callable[[], None] = lambda: None  # set when it joins a model's batch
        self._condition = threading.Condition()
        self._pieces: list[str] = []  # drawn, not yet taken
        self._buffered = 0
        self._wanted = 1  # the consumer waits for this many characters
        self._finished = max_new_chars == 0
        self._cancelled = False
        self._error: str | None = None

    # ---- the consumer's side ----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """All characters were drawn, or the request failed or was cancelled."""
        with self._condition:
            return self._finished

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Stop generating; the scheduler drops the request at its next tick."""
        with self._condition:
            was_finished = self._finished
            self._cancelled = True
            self._finished = True
            self._condition.notify_all()
        if not was_finished:
            self._consumer_cancelled()

    def take(self, min_chars: int = 1, timeout: float | None = None) -> str:
        """The characters drawn since the last take, once there are ``min_chars`` of them (or
        ``max_ahead``, the most it holds), the request is finished, or ``timeout`` seconds have
        passed (then possibly "").

        Raises GenerationFailed when the request failed and nothing is left to take.
        """
        with self._condition:
            self._wanted = max(1, min(min_chars, self.max_ahead))  # never more than it may hold
            self._condition.wait_for(lambda: self._buffered >= self._wanted or self._finished, timeout)
            text = "".join(self._pieces)
            self._pieces.clear()
            was_full = self._buffered >= self.max_ahead
            self._buffered = 0
            error = self._error
        if text:
            self._consumer_took(len(text), was_full)
        if not text and error is not None:
            raise GenerationFailed(error)
        return text

    def chunks(
        self, min_chars: int = 1, max_wait: float | None = None, pace: Callable[[], float] | None = None
    ) -> Iterator[str]:
        """Yield the text in pieces of at least ``min_chars`` characters (fewer when
        ``max_wait`` seconds pass first, and at the end). Closing it cancels the request.

        ``pace()``, when given, is asked before each piece but the first for the least time
        between pieces now; while it exceeds ``max_wait``, pieces come every ``pace()`` seconds, or
        when ``max_ahead`` characters wait (a server under load sends fewer, longer updates, but
        the first characters as soon as they are there).
        """
        first = True
        try:
            while True:
                interval = pace() if pace is not None and not first else 0.0
                if max_wait is not None and interval > max_wait:
                    text = self.take(self.max_new_chars + 1, interval)  # whatever came in that time
                else:
                    text = self.take(min_chars, max_wait)
                if text:
                    first = False
                    yield text
                elif self.finished:
                    return
        finally:
            self.cancel()  # a no-op once finished

    # ---- the scheduler's side ---------------------------------------------------------------

    def _consumer_took(self, count: int, was_full: bool) -> None:
        """The consumer took ``count`` characters (``was_full``: the buffer held ``max_ahead``)."""
        if was_full:
            self._wake_scheduler()  # it may have been waiting for this request's buffer to drain

    def _consumer_cancelled(self) -> None:
        """The consumer cancelled the unfinished request."""
        self._wake_scheduler()

    @property
    def _ready(self) -> bool:
        """Whether the next tick should draw for it (read without the lock: a hint)."""
        return self._cancelled or self._buffered < self.max_ahead

    def _deliver(self, text: str) -> None:
        """Hand over the next character(s)."""
        with self._condition:
            self._pieces.append(text)
            self._buffered += len(text)
            self.remaining -= len(text)
            if self.remaining <= 0:
                self._finished = True
            if self._finished or self._buffered >= self._wanted:
                self._condition.notify_all()

    def _fail(self, error: BaseException | str) -> None:
        """End the request with ``error`` (an exception, or what to say)."""
        with self._condition:
            self._error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            self._finished = True
            self._condition.notify_all()


def _cat_states(states: list[State]) -> State:
    """Join states (L, b_i, H) along the batch dimension."""
    if isinstance(states[0], tuple):
        return tuple(np.concatenate(parts, axis=1) for parts in zip(*states))
    return np.concatenate(states, axis=1)


def _state_row(state: State, row: int) -> State:
    """Row ``row`` of a batched state, (L, 1, H)."""
    if isinstance(state, tuple):
        return tuple(part[:, row : row + 1] for part in state)
    return state[:, row : row + 1]


def _state_rows(state: State, rows: list[int]) -> State:
    """The given rows of a batched state, (L, len(rows), H)."""
    if isinstance(state, tuple):
        return tuple(part[:, rows] for part in state)
    return state[:, rows]


def tick_chars(request: Generation) -> int:
    """How many characters ``request`` draws in the next tick: as many as it drew so far (its first
    tick draws one, so its first character is not held back), at most :data:`MAX_TICK_CHARS`,
    what it still has to draw, and what its buffer has room for (at least one)."""
    drawn = request.max_new_chars - request.remaining
    room = request.max_ahead - request._buffered  # read without the lock: only a consumer lowers it
    return max(1, min(drawn, MAX_TICK_CHARS, request.remaining, room))


class _ModelWorker:
    """The thread that steps every request of one model."""

    def __init__(self, scheduler: BatchScheduler, model: CharRNN):
        self.scheduler = scheduler
        self.model = model
        self.condition = threading.Condition()
        self.joining: list[Generation] = []  # prefilled, not yet in the batch
        self.active = 0  # requests in the batch (read under the condition)
        # The requests the last tick stepped, in row order, with their logits (R, V) and state
        # (L, R, H) as the step left them, for each engine: while the next tick steps the same
        # requests (the usual case), it takes these as they are instead of joining their own rows again.
        self._stacked: dict[str, tuple[list[Generation], np.ndarray, State]] = {}
        self.thread = threading.Thread(
            target=self._run, name=f"batching-{model.cell}-h{model.hidden_size}", daemon=True
        )

    def load(self) -> int:
        return self.active + len(self.joining)

    def wake(self) -> None:
        with self.condition:
            self.condition.notify()

    def _run(self) -> None:
        stepper = self.scheduler.stepper(self.model)
        requests: list[Generation] = []
        while True:
            with self.condition:
                if not requests:
                    self.condition.wait_for(lambda: self.joining, timeout=self.scheduler.idle_seconds)
                elif not any(request._ready for request in requests):
                    # Every buffer is full: wait for a consumer to take (or cancel), never spin.
                    self.condition.wait_for(
                        lambda: self.joining or any(request._ready for request in requests), timeout=1.0
                    )
                joiners, self.joining = self.joining, []
                self.active += len(joiners)  # counted from now until they finish
            if not requests and not joiners and self.scheduler._retire(self):
                return
            requests += joiners
            requests = self._tick(stepper, requests)
            with self.condition:
                self.active = len(requests)

    def _tick(self, stepper: Stepper, requests: list[Generation]) -> list[Generation]:
        """Draw the next characters of every request whose consumer keeps up (see
        :func:`tick_chars`), stepping together those on the same engine, and return the requests
        still generating."""
        requests = [request for request in requests if not request.cancelled]
        ready = [request for request in requests if request._ready]
        if not ready:
            self._unstack()
            return requests
        ended: set[int] = set()
        for engine in dict.fromkeys(request.engine for request in ready):  # in order, each once
            group = [request for request in ready if request.engine == engine]
            ended |= self._tick_engine(stepper.using(engine), group)
        return [request for request in requests if id(request) not in ended]

    def _tick_engine(self, stepper: Stepper, ready: list[Generation]) -> set[int]:
        """One tick of the ready requests of one engine (``stepper``'s); the ids of those that ended."""
        engine = stepper.engine
        logits, state = self._stack(engine, ready)  # (R, V), (L, R, H)
        counts = np.zeros(len(ready), np.int64)
        noise_rows = []
        for i, request in enumerate(ready):
            try:
                noise_rows.append(request.draws.noise_rows(tick_chars(request)))
            except Exception as error:  # noqa: BLE001 - ends this request, not the loop
                request._fail(error)
                noise_rows.append(None)  # count 0: it draws nothing and is not stepped
            else:
                counts[i] = len(noise_rows[-1])
        noise = np.ones((len(ready), max(1, counts.max()), logits.shape[1]), np.float32)  # (R, K, V)
        for i, rows in enumerate(noise_rows):
            if rows is not None:
                noise[i, : len(rows)] = rows
        settings = [request.settings for request in ready]
        try:  # tokens (R, K), logits (R, V), state (L, R, H)
            tokens, logits, state = stepper.sample_rows(
                logits,
                state,
                noise,
                counts,
                np.array([setting.temperature for setting in settings], np.float64),
                np.array([setting.top_k for setting in settings], np.int64),
                np.array([setting.top_p for setting in settings], np.float64),
            )
        except Exception as error:  # noqa: BLE001 - cannot tell whose row broke it: end them all
            for request in ready:
                request._fail(error)
            return {id(request) for request in ready}
        vocab = self.model.vocab
        going_on = []  # indices into ready
        for i, (request, count) in enumerate(zip(ready, counts.tolist())):
            if count == 0:  # it failed above
                continue
            request._deliver("".join(vocab[token] for token in tokens[i, :count].tolist()))
            if request.remaining > 0 and not request.cancelled:
                going_on.append(i)
        stepping = [ready[i] for i in going_on]
        if stepping:
            if len(stepping) < len(ready):
                logits, state = logits[going_on], _state_rows(state, going_on)
            self._stacked[engine.name] = (stepping, logits, state)
        return {id(request) for request in ready} - {id(request) for request in stepping}

    def _stack(self, engine: Engine, ready: list[Generation]) -> tuple[np.ndarray, State]:
        """The logits (R, V) and state (L, R, H) of ``ready`` (all on ``engine``), row i being
        request i's; it takes them out of the last step's arrays when it stepped the same requests."""
        stacked = self._stacked.pop(engine.name, None)
        if stacked is not None:
            stepped, logits, state = stacked
            if stepped == ready:  # the same requests in the same order (Generation compares by identity)
                return logits, state
            self._stacked[engine.name] = stacked
            self._unstack(engine.name)
        return np.concatenate([request.logits for request in ready]), _cat_states([request.state for request in ready])

    def _unstack(self, engine_name: str | None = None) -> None:
        """Give each request of the last step (of one engine, or of all) its own rows again."""
        for name in [engine_name] if engine_name is not None else list(self._stacked):
            stacked = self._stacked.pop(name, None)
            if stacked is not None:
                stepped, logits, state = stacked
                for row, request in enumerate(stepped):
                    request.logits, request.state = logits[row : row + 1], _state_row(state, row)


def check_request(
    model: CharRNN, prompt: str, max_new_chars: int, temperature: float, top_k: int, top_p: float, seed: int | None
) -> SamplingSettings:
    """The settings of a request, once its arguments are what ``rnn_demo.generation.sampling.generate``
    takes; ValueError or TypeError otherwise (and for a model in training mode)."""
    settings = SamplingSettings(temperature, top_k, top_p)
    check_length(max_new_chars)
    check_seed(seed)
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    if model.training:
        raise ValueError("the model must be in eval mode (dropout off) to be served")
    return settings


class BatchScheduler:
    """Continuous batching of generations, one thread per model (started on demand).

    Args:
        max_active: requests generating at once per model; :meth:`submit` refuses more.
        idle_seconds: a model's thread ends after this long without requests.
        max_ahead: characters a request may be drawn ahead of what its consumer has taken.
    """

    def __init__(
        self,
        max_active: int = MAX_ACTIVE_PER_MODEL,
        idle_seconds: float = IDLE_SECONDS,
        max_ahead: int = MAX_AHEAD_CHARS,
    ):
        self.max_active = max_active
        self.idle_seconds = idle_seconds
        self.max_ahead = max_ahead
        self._lock = threading.Lock()
        self._workers: dict[CharRNN, _ModelWorker] = {}
        self._steppers: weakref.WeakKeyDictionary[CharRNN, Stepper] = weakref.WeakKeyDictionary()

    def stepper(self, model: CharRNN) -> Stepper:
        """The Stepper this scheduler uses for ``model``: made when the model is first served, so
        it holds the weights the model had then (serve a model whose weights change with a new
        scheduler). Stepping is thread-safe: it writes only new arrays."""
        with self._lock:
            stepper = self._steppers.get(model)
        if stepper is None:
            made = Stepper(model)  # outside the lock: a few ms
            with self._lock:
                stepper = self._steppers.setdefault(model, made)
        return stepper

    def preload(self, model: CharRNN) -> None:
        """Make ``model``'s Stepper now, so that its first request does not wait for it, and start
        getting the compiled engine ready (in the background; the reference engine serves until then)."""
        engines.start_compiling()
        self.stepper(model)

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
        """Start generating; the arguments mean what they mean for ``rnn_demo.generation.sampling.generate``,
        and so does the text (bit for bit, for the same seed and engine).

        The prompt is run through the model here, in the caller's thread. Raises ValueError or
        TypeError for bad arguments, SchedulerFull when the model has ``max_active`` requests.
        """
        settings = check_request(model, prompt, max_new_chars, temperature, top_k, top_p, seed)
        draws = TokenDraws(seed, model.vocab_size, max_new_chars)
        generation = Generation(settings, draws, max_new_chars, self.max_ahead)
        self.start(model, generation, prompt)
        return generation

    def start(self, model: CharRNN, generation: Generation, prompt: str) -> None:
        """Run ``prompt`` through ``model`` (in the caller's thread) and add the new ``generation``
        (made for this model, with its draws) to the model's batch. Raises SchedulerFull when the
        model has ``max_active`` requests."""
        if generation.max_new_chars == 0:
            return
        # One engine from start to end: the compiled one if it is ready now, else the reference one.
        generation.engine = engines.current()
        generation.engine_note = engines.note(generation.engine)
        stepper = self.stepper(model).using(generation.engine)
        # The same priming as rnn_demo.generation.sampling's: (1, V) and (L, 1, H).
        generation.logits, generation.state = prime(model, stepper, encode_prompt(model, prompt).ids)
        with self._lock:
            worker = self._workers.get(model)
            if worker is None:
                worker = self._workers[model] = _ModelWorker(self, model)
                worker.thread.start()
            with worker.condition:
                if worker.load() >= self.max_active:
                    raise SchedulerFull(
                        f"{model.cell}-h{model.hidden_size} is already generating {self.max_active} texts"
                    )
                generation._wake_scheduler = worker.wake
                worker.joining.append(generation)
                worker.condition.notify()

    def active_count(self) -> int:
        """Requests generating or about to join, over all models."""
        with self._lock:
            workers = list(self._workers.values())
        total = 0
        for worker in workers:
            with worker.condition:
                total += worker.load()
        return total

    def running_threads(self) -> int:
        """Model threads alive now (they end when idle)."""
        with self._lock:
            return sum(worker.thread.is_alive() for worker in self._workers.values())

    def _retire(self, worker: _ModelWorker) -> bool:
        """Called by an idle worker: remove it unless a request arrived meanwhile."""
        with self._lock, worker.condition:
            if worker.joining:
                return False
            if self._workers.get(worker.model) is worker:
                del self._workers[worker.model]
            return True
