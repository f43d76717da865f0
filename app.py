"""The Gradio demo: continue a prompt with a character-level RNN, GRU or LSTM, streaming.

Run it with ``python app.py`` (http://127.0.0.1:7860). The models come from the folder
``models/`` next to this file, or from $RNN_DEMO_MODELS (a folder or a Hub repo id); see
:mod:`rnn_demo.zoo`. The same file is the entry point of the Hugging Face Space.

Public API (fixed names; clients depend on them):
    /generate(prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed)
        streams the text shown in the UI: the prompt followed by the continuation so far.
    /models() -> the model table as a list of JSON objects.
Every other event is private.
"""

import argparse
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

# Nothing imported here imports torch: the page is served first and torch (about 3 s to import
# on a small CPU) is imported right after, by main()'s warm-up or the first request.
from rnn_demo.allocator import limit_malloc_arenas
from rnn_demo.checkpoint import CheckpointError
from rnn_demo.zoo import MODELS_ENV, ModelInfo, ModelZoo, UnknownModelError

if TYPE_CHECKING:
    from rnn_demo.batching import BatchScheduler
    from rnn_demo.process_batching import ProcessScheduler

    Scheduler = BatchScheduler | ProcessScheduler

DEFAULT_MODELS_DIR = Path(__file__).resolve().parent / "models"

# Caps and defaults (the API enforces the same caps as the UI).
MAX_PROMPT_CHARS = 2_000
MAX_NEW_CHARS = 2_000
DEFAULT_NEW_CHARS = 500
MAX_TEMPERATURE = 2.0
DEFAULT_TEMPERATURE = 0.8
MAX_TOP_K_SLIDER = 100  # the slider's end; the API accepts any top_k >= 0 (0 = off)
DEFAULT_TOP_K = 0
DEFAULT_TOP_P = 1.0
RANDOM_SEED = -1  # the seed value that means "draw a fresh random seed"
LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # half of a UTF-16 pair: not text, refused in prompts
DEFAULT_CELL = "lstm"  # preselected when the zoo has it
# Serving: generations running at once and waiting at most. The running ones of each model are
# stepped together in a process of their own (rnn_demo.process_batching), so many cost little
# more than one; each holds one of gradio's 40 worker threads while it waits for its characters.
CONCURRENCY_LIMIT = 32
MAX_QUEUE_SIZE = 32
# Gradio keeps a copy of the page's configuration (about 0.2 MB here) for each of this many recent
# sessions (its default: 10,000), and every API call is a new session: the cap bounds the server's
# memory under traffic (README, "Load test").
STATE_SESSION_CAPACITY = 100
# glibc malloc arenas when served by main() (glibc's default: 8 per core). Each arena keeps what
# its threads freed, and Gradio's many worker threads spread over them: under load the free
# memory held in 16 arenas (2 cores) came to about 150 MiB more than with 2 (README, "Load test";
# rnn_demo/allocator.py). $MALLOC_ARENA_MAX, when set, wins.
MALLOC_ARENAS = 2
# torch threads of the generation process: one step of these small models is too short to
# share between cores (lstm-h128 on this 2-core CPU: 3,700 chars/s with 1 thread, 2,000 with 2).
TORCH_THREADS = 1
# Streaming: send the text every few characters (or after a short while), not every character,
# so the browser repaints smoothly; the status line is refreshed less often still.
YIELD_EVERY_CHARS = 8
YIELD_EVERY_SECONDS = 0.05
# Under load, fewer and longer updates: every update costs the server (and each client) about a
# millisecond of Python whatever its length, so the streams together get at most about this many
# a second (each stream one every max(YIELD_EVERY_SECONDS, running streams / this) seconds; the
# first characters of a stream go at once). 16 streams of lstm-h256 on this 2-core machine
# (benchmarks.many_users): 4,192 chars/s in all with 80, 4,960 with 40 (one update each 0.4 s).
MAX_UPDATES_PER_SECOND = 40
STATUS_EVERY_SECONDS = 0.25
# Gradio recomputes a summary of its recent events for its monitoring page (a pandas DataFrame of
# up to 10,000 of them) each time a request ends, by default: milliseconds of the server's CPU
# per request, more as the events recorded grow. Here, once every this many events instead;
# $GRADIO_ANALYTICS_CACHE_FREQUENCY, when set, wins.
ANALYTICS_SUMMARY_EVERY = 1_000
GENERATING, DONE, STOPPED = "generating…", "done", "stopped"  # states shown in the status line
STOP_GRACE_MS = 500  # Stop waits this long for the generator to end by itself before cancelling it

EXAMPLE_PROMPTS = [
    "ROMEO:\n",
    "First Citizen:\nBefore we proceed any further, ",
    "KING HENRY VI:\nMy lords, ",
    "To be, or not to be",
]
CELL_LABELS = {"rnn": "RNN (hand-written)", "gru": "GRU", "lstm": "LSTM"}

ABOUT = """
### The recurrence

The plain RNN cell computes, at every time step *t*, from the input x<sub>t</sub> and its own
previous state h<sub>t-1</sub>:

    h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)

The state h<sub>t</sub> is all the network remembers of the text so far; a linear layer turns it
into scores for the next character. The GRU and LSTM cells replace this one line with gated
updates that keep information for longer.

### `torch.nn.RNN`, written out

`rnn_demo/rnn.py` implements the formula above
with the constructor, parameters and call of `torch.nn.RNN` (and a parity test against it):

- `input_size`, `hidden_size`: the sizes of x<sub>t</sub> and h<sub>t</sub>;
- `num_layers`: stacked layers, layer *k* reading layer *k-1*'s states;
- `nonlinearity`: `"tanh"` or `"relu"`; `bias`: whether b<sub>ih</sub>, b<sub>hh</sub> exist;
- `batch_first`: (batch, time, feature) instead of (time, batch, feature); `dropout`: between layers;
- parameters `weight_ih_l{k}` (hidden × input), `weight_hh_l{k}` (hidden × hidden),
  `bias_ih_l{k}`, `bias_hh_l{k}`, initialised uniform(-1/√hidden, 1/√hidden).

The language model around it (embedding → recurrent stack → linear head) is
`rnn_demo/model.py`; sampling one character at a time with the state carried is
`rnn_demo/sampling.py` (each step through `rnn_demo/engine.py`); this page is `app.py`.
"""


# ---- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRequest:
    """A validated /generate request."""

    prompt: str
    model: ModelInfo
    temperature: float
    max_new_chars: int
    top_k: int
    top_p: float
    seed: int | None  # None = random


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise gr.Error(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def _whole_number(name: str, value) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise gr.Error(f"{name} must be a whole number, got {value!r}.")
    return value


def validate_request(
    zoo: ModelZoo,
    prompt,
    cell,
    hidden_size,
    temperature,
    max_new_chars,
    top_k,
    top_p,
    seed,
) -> GenerationRequest:
    """Check every argument of /generate; raise gr.Error with one clear sentence on the first bad one."""
    if not isinstance(prompt, str):
        raise gr.Error(f"prompt must be text, got {type(prompt).__name__}.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise gr.Error(f"The prompt is {len(prompt):,} characters long; the limit is {MAX_PROMPT_CHARS:,}.")
    surrogate = LONE_SURROGATE.search(prompt)
    if surrogate:  # JSON can carry "\ud800"; it is no character, and could not be sent back as UTF-8
        raise gr.Error(
            f"prompt must be valid Unicode text: it holds a lone surrogate (U+{ord(surrogate.group()):04X}) "
            f"at position {surrogate.start()}."
        )
    if not isinstance(cell, str):
        raise gr.Error(f"cell must be text (one of {', '.join(zoo.cells()) or 'none'}), got {cell!r}.")
    hidden_size = _whole_number("hidden_size", hidden_size)
    try:
        model = zoo.info(cell.strip().lower(), hidden_size)
    except UnknownModelError as error:
        raise gr.Error(f"{error}.") from None
    temperature = _number("temperature", temperature)
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise gr.Error(f"temperature must be between 0 (greedy) and {MAX_TEMPERATURE}, got {temperature}.")
    max_new_chars = _whole_number("max_new_chars", max_new_chars)
    if not 1 <= max_new_chars <= MAX_NEW_CHARS:
        raise gr.Error(f"max_new_chars must be between 1 and {MAX_NEW_CHARS:,}, got {max_new_chars:,}.")
    top_k = _whole_number("top_k", top_k)
    if top_k < 0:
        raise gr.Error(f"top_k must be 0 (off) or more, got {top_k}.")
    top_p = _number("top_p", top_p)
    if not 0 < top_p <= 1:
        raise gr.Error(f"top_p must be above 0 and at most 1 (1 = off), got {top_p}.")
    seed = _whole_number("seed", seed)
    from rnn_demo.sampling import MAX_SEED

    if seed != RANDOM_SEED and not 0 <= seed <= MAX_SEED:
        raise gr.Error(f"seed must be {RANDOM_SEED} (random) or between 0 and {MAX_SEED}, got {seed}.")
    return GenerationRequest(
        prompt=prompt,
        model=model,
        temperature=temperature,
        max_new_chars=max_new_chars,
        top_k=top_k,
        top_p=top_p,
        seed=None if seed == RANDOM_SEED else seed,
    )


# ---- generation ----------------------------------------------------------------------------------


def _format_count(count: int) -> str:
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


@dataclass(frozen=True)
class RunStatus:
    """Where one generation stands; rendered as the status line under the output."""

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

    def line(self) -> str:
        """The status line (Markdown)."""
        state = DONE if self.done else STOPPED if self.stopped else GENERATING
        parts = [
            describe_model(self.model),
            f"{state} {self.new_chars:,} characters in {self.seconds:.2f} s ({self.chars_per_second:,.0f} chars/s)",
        ]
        if self.skipped:
            shown = " ".join(repr(c) for c in self.skipped[:10]) + (" …" if len(self.skipped) > 10 else "")
            parts.append(f"skipped characters the model does not know: {shown}")
        return " · ".join(parts)


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
    scheduler: "Scheduler | None" = None,
) -> Iterator[tuple[str, RunStatus]]:
    """Yield (prompt + continuation so far, RunStatus) every few characters, and once at the end.

    The first update is the prompt alone; the last one has ``status.done`` set and the whole text
    (or ``status.stopped``, when ``should_stop()`` turned true first: it is asked after every
    character, or with a ``scheduler`` after every chunk of characters it hands over).
    With a ``scheduler`` the generation is stepped together with the others running on the
    same model; the text is the same either way. Closing the iterator ends the generation.
    Raises gr.Error for bad arguments or a model that cannot be loaded.
    """
    from rnn_demo.batching import GenerationFailed, SchedulerFull
    from rnn_demo.sampling import encode_prompt, stream

    request = validate_request(zoo, prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed)
    info = request.model
    try:
        model = zoo.load(info.cell, info.hidden_size)
    except CheckpointError as error:
        raise gr.Error(f"The model {info.name} could not be loaded: {error}") from None
    started = clock()
    settings = dict(temperature=request.temperature, top_k=request.top_k, top_p=request.top_p, seed=request.seed)
    if scheduler is None:
        pieces_out = stream(model, request.prompt, request.max_new_chars, **settings)  # one character at a time
    else:
        try:
            generation = scheduler.submit(model, request.prompt, request.max_new_chars, **settings)
        except SchedulerFull as error:
            raise gr.Error(f"The server is busy ({error}); try again in a moment.") from None
        except GenerationFailed as error:  # the generation process could not be started
            raise gr.Error(f"The generation failed: {error}") from None
        pieces_out = generation.chunks(
            min_chars=YIELD_EVERY_CHARS,
            max_wait=YIELD_EVERY_SECONDS,
            pace=lambda: scheduler.active_count() / MAX_UPDATES_PER_SECOND,
        )
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
                status = RunStatus(info, new_chars, now - started, status.skipped)
                yield "".join(pieces), status
                unsent, last_sent = 0, now
    except GenerationFailed as error:
        raise gr.Error(f"The generation failed: {error}") from None
    finally:
        pieces_out.close()
    seconds = clock() - started
    yield "".join(pieces), RunStatus(info, new_chars, seconds, status.skipped, done=not stopped, stopped=stopped)


def page_updates(updates: Iterator[tuple[str, RunStatus]], every_seconds: float, clock=time.perf_counter):
    """(text, status line) for the page: every text, but a status line only every ``every_seconds``
    (and always the last one); the others are ``gr.skip()``, so the line is not redrawn for every chunk.
    """
    last_sent = None
    for text, status in updates:
        now = clock()
        if status.finished or last_sent is None or now - last_sent >= every_seconds:
            last_sent = now
            yield text, status.line()
        else:
            yield text, gr.skip()


class StopRequests:
    """The Stop button's way to the generation it stops: one flag per browser session.

    The generator checks its flag after every character and ends with a "stopped" status, so
    the page always shows how far it got (gradio's ``cancels`` stays as the hard stop behind it).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._flags: dict[str, threading.Event] = {}

    def start(self, session: str) -> threading.Event:
        """A fresh flag for the generation that ``session`` starts now."""
        flag = threading.Event()
        with self._lock:
            self._flags[session] = flag
        return flag

    def request(self, session: str) -> None:
        with self._lock:
            flag = self._flags.get(session)
        if flag is not None:
            flag.set()

    def finish(self, session: str, flag: threading.Event) -> None:
        with self._lock:
            if self._flags.get(session) is flag:
                del self._flags[session]


# ---- UI helpers (private events) -----------------------------------------------------------------


def hidden_size_choices(zoo: ModelZoo, cell: str) -> list[tuple[str, int]]:
    """Dropdown choices for a cell: (label, hidden size), smallest first."""
    choices = []
    for size in zoo.hidden_sizes(cell):
        info = zoo.info(cell, size)
        layers = f"{info.num_layers}×" if info.num_layers > 1 else ""
        choices.append((f"{layers}{size} ({_format_count(info.params)} params)", size))
    return choices


def default_hidden_size(zoo: ModelZoo, cell: str | None, current: int | None = None) -> int | None:
    """Keep ``current`` when the cell has it, else the cell's largest model."""
    sizes = zoo.hidden_sizes(cell) if cell else []
    if current in sizes:
        return current
    return sizes[-1] if sizes else None


def model_table_rows(zoo: ModelZoo) -> list[list]:
    """The Models tab: one row per model."""

    def optional(value, digits):
        return round(value, digits) if value is not None else None

    return [
        [
            CELL_LABELS[info.cell],
            info.hidden_size,
            info.num_layers,
            info.params,
            optional(info.val_bpc, 3),
            optional(info.test_bpc, 3),
            optional(info.train_seconds / 60 if info.train_seconds is not None else None, 1),
            round(info.size_bytes / 1_000_000, 2),
            info.trained_on or "",
        ]
        for info in zoo.models()
    ]


MODEL_TABLE_HEADERS = [
    "cell",
    "hidden size",
    "layers",
    "parameters",
    "val bits/char",
    "test bits/char",
    "training (min)",
    "size (MB)",
    "trained on",
]


class LazyScheduler:
    """The demo's scheduler, made on first use (importing one imports torch): the one given, or a
    ProcessScheduler, which steps the generations in a process of its own."""

    def __init__(self, scheduler: "Scheduler | None" = None):
        self._scheduler = scheduler
        self._lock = threading.Lock()

    def get(self) -> "Scheduler":
        with self._lock:
            if self._scheduler is None:
                from rnn_demo.process_batching import ProcessScheduler

                self._scheduler = ProcessScheduler(torch_threads=TORCH_THREADS)
            return self._scheduler


def build_demo(
    zoo: ModelZoo,
    scheduler: "Scheduler | LazyScheduler | None" = None,
    concurrency_limit: int = CONCURRENCY_LIMIT,
    max_queue_size: int = MAX_QUEUE_SIZE,
) -> gr.Blocks:
    """The whole UI for one zoo; nothing is loaded until the first request.

    Every generation (page and API) goes through ``scheduler`` (a new ProcessScheduler, made on
    first use, by default), which steps the concurrent generations of each model together.
    ``concurrency_limit`` generations run at once and at most ``max_queue_size`` wait; a request
    beyond that is refused at once with Gradio's "Queue is full" error. Both are set by the
    server (tests use small ones); no request can change them.
    """
    if not isinstance(scheduler, LazyScheduler):
        scheduler = LazyScheduler(scheduler)
    cells = zoo.cells()
    initial_cell = DEFAULT_CELL if DEFAULT_CELL in cells else (cells[0] if cells else None)
    problems = zoo.problems()

    with gr.Blocks(title="Character-level RNN demo") as demo:
        names = [CELL_LABELS[c].split(" ")[0] for c in cells] or ["RNN"]
        title = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        gr.Markdown(
            f"# Character-level {title}\n"
            "Small recurrent networks trained on tiny Shakespeare continue your prompt one character at a time."
        )
        if not cells:
            gr.Markdown(
                "### ⚠️ No models are available\n"
                + "\n".join(f"- {problem}" for problem in problems)
                + f"\n\nTrain some into `models/<cell>-h<size>/` (see the README), or point ${MODELS_ENV} "
                "at a folder or a Hub repo id, and restart the app."
            )
        with gr.Tab("Generate"):
            with gr.Row():
                with gr.Column(scale=2):
                    prompt = gr.Textbox(
                        label="Prompt",
                        value=EXAMPLE_PROMPTS[0],
                        lines=4,
                        max_length=MAX_PROMPT_CHARS,
                        placeholder="Text to continue (may be empty)",
                    )
                    with gr.Row():
                        cell = gr.Dropdown(
                            label="Cell type",
                            choices=[(CELL_LABELS[c], c) for c in cells],
                            value=initial_cell,
                            elem_id="cell",
                        )
                        hidden_size = gr.Dropdown(
                            label="Hidden size",
                            choices=hidden_size_choices(zoo, initial_cell) if initial_cell else [],
                            value=default_hidden_size(zoo, initial_cell),
                            elem_id="hidden-size",
                            # The choices follow the cell in the browser; the server checks the
                            # size itself (validate_request), so a session whose updated choices
                            # Gradio has dropped (STATE_SESSION_CAPACITY) still works.
                            allow_custom_value=True,
                        )
                    temperature = gr.Slider(
                        0,
                        MAX_TEMPERATURE,
                        value=DEFAULT_TEMPERATURE,
                        step=0.05,
                        label="Temperature",
                        info="0 = greedy (always the most likely character); higher = wilder",
                    )
                    max_new_chars = gr.Slider(
                        1, MAX_NEW_CHARS, value=DEFAULT_NEW_CHARS, step=1, precision=0, label="Max new characters"
                    )
                    with gr.Accordion("Advanced", open=False):
                        top_k = gr.Slider(
                            0,
                            MAX_TOP_K_SLIDER,
                            value=DEFAULT_TOP_K,
                            step=1,
                            precision=0,
                            label="Top-k",
                            info="sample among the k most likely characters (0 = all)",
                        )
                        top_p = gr.Slider(
                            0.05,
                            1.0,
                            value=DEFAULT_TOP_P,
                            step=0.05,
                            label="Top-p",
                            info="sample among the most likely characters holding this much probability (1 = all)",
                        )
                        seed = gr.Number(
                            value=RANDOM_SEED,
                            precision=0,
                            label="Seed",
                            info=f"{RANDOM_SEED} = random; the same seed gives the same text",
                        )
                    with gr.Row():
                        generate_button = gr.Button("Generate", variant="primary", elem_id="generate")
                        stop_button = gr.Button("Stop", variant="stop", elem_id="stop")
                with gr.Column(scale=3):
                    output = gr.Textbox(
                        label="Text", lines=18, max_lines=30, interactive=False, buttons=["copy"], elem_id="output"
                    )
                    status_line = gr.Markdown(elem_id="status-line")
            gr.Examples(examples=[[p] for p in EXAMPLE_PROMPTS], inputs=[prompt], label="Example prompts")

        with gr.Tab("Models"):
            gr.Markdown(
                "Every model the demo can use. Bits per character: the average cross-entropy (base 2) of "
                "predicting each next character of the validation and test text; lower is better."
            )
            gr.Dataframe(
                value=model_table_rows(zoo),
                headers=MODEL_TABLE_HEADERS,
                interactive=False,
                datatype=["str", "number", "number", "number", "number", "number", "number", "number", "str"],
            )
            if problems and cells:
                gr.Markdown("Skipped:\n" + "\n".join(f"- {problem}" for problem in problems))

        with gr.Tab("About"):
            gr.Markdown(ABOUT)

        # The page's Generate button and the public /generate endpoint run the same generator and
        # share one concurrency limit. They are two events because the page also streams the
        # status line, while API clients get only the text (predict() returns the final text).
        stops = StopRequests()

        def generate_for_page(
            prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed, request: gr.Request
        ):
            flag = stops.start(request.session_hash)
            updates = generate_stream(
                zoo,
                prompt,
                cell,
                hidden_size,
                temperature,
                max_new_chars,
                top_k,
                top_p,
                seed,
                should_stop=flag.is_set,
                scheduler=scheduler.get(),
            )
            try:
                yield from page_updates(updates, STATUS_EVERY_SECONDS)
            finally:  # also when gradio closes this generator (cancel, disconnect): end the generation
                updates.close()
                stops.finish(request.session_hash, flag)

        generation = generate_button.click(
            generate_for_page,
            inputs=[prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed],
            outputs=[output, status_line],
            api_visibility="private",
            preprocess=False,  # generate_stream validates every value itself, with clearer messages
            concurrency_limit=concurrency_limit,
            concurrency_id="generate",
            show_progress="minimal",
        )

        # Stop: ask the generator to end (it sends the text so far and a "stopped" status line);
        # a moment later cancel the event, which only matters for one that has not started yet
        # or does not end (cancelling at once could cut off that last update).
        def request_stop(request: gr.Request) -> None:
            stops.request(request.session_hash)

        stop_button.click(request_stop, api_visibility="private", queue=False).then(
            fn=None, js=f"() => new Promise((done) => setTimeout(done, {STOP_GRACE_MS}))", queue=False
        ).then(fn=None, cancels=[generation], queue=False)

        def update_hidden_sizes(cell: str | None, current: int | None):
            if cell not in zoo.cells():
                return gr.update(choices=[], value=None)
            return gr.update(choices=hidden_size_choices(zoo, cell), value=default_hidden_size(zoo, cell, current))

        cell.change(
            update_hidden_sizes,
            inputs=[cell, hidden_size],
            outputs=hidden_size,
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )

        # The public API. gr.api takes each parameter's name, type and default from the signature,
        # and the type of each streamed value from the return annotation.
        def generate(
            prompt: str,
            cell: str,
            hidden_size: int,
            temperature: float = DEFAULT_TEMPERATURE,
            max_new_chars: int = DEFAULT_NEW_CHARS,
            top_k: int = DEFAULT_TOP_K,
            top_p: float = DEFAULT_TOP_P,
            seed: int = RANDOM_SEED,
        ) -> str:
            """Continue the prompt with a model of the given cell and hidden size (see /models).

            Streams the prompt followed by the continuation so far; the last value is the whole text.
            temperature: 0 (greedy) to 2; top_k: 0 = off; top_p: 1.0 = off; seed: -1 = random.
            """
            updates = generate_stream(
                zoo, prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed, scheduler=scheduler.get()
            )
            try:
                for text, _ in updates:
                    yield text
            finally:  # gradio closes this generator on cancel or disconnect: end the generation now
                updates.close()

        def models() -> list[dict]:
            """Every available model: name, cell, hidden_size, num_layers, params, val_bpc, test_bpc,
            train_seconds, trained_on, size_bytes."""
            return zoo.table()

        gr.api(generate, api_name="generate", concurrency_limit=concurrency_limit, concurrency_id="generate")
        gr.api(models, api_name="models", concurrency_limit=None)

    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(ANALYTICS_SUMMARY_EVERY))  # read by the queue
    demo.queue(max_size=max_queue_size, default_concurrency_limit=concurrency_limit)
    return demo


ZOO = ModelZoo.from_environment(DEFAULT_MODELS_DIR)
SCHEDULER = LazyScheduler()
demo = build_demo(ZOO, SCHEDULER)


def warm_up(zoo: ModelZoo, scheduler: LazyScheduler) -> None:
    """Import torch and the generation code, start the scheduler (the generation process) and load
    the page's default model into both, so that the first request does not pay for them.
    Requests that come earlier wait for the same imports."""
    import torch

    torch.set_num_threads(TORCH_THREADS)
    scheduler = scheduler.get()
    cell = DEFAULT_CELL if DEFAULT_CELL in zoo.cells() else next(iter(zoo.cells()), None)
    size = default_hidden_size(zoo, cell)
    if cell is not None and size is not None:
        try:
            scheduler.prepare(zoo.load(cell, size))
        except CheckpointError:
            pass  # the page already lists the zoo's problems; a request for it says why


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the character-level RNN demo.")
    parser.add_argument("--host", default=None, help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    limit_malloc_arenas(MALLOC_ARENAS)  # before gradio starts its threads
    # Serve the page first, then warm up in this (otherwise idle) main thread.
    demo.launch(
        server_name=args.host, server_port=args.port, prevent_thread_lock=True,
        state_session_capacity=STATE_SESSION_CAPACITY,
    )
    warm_up(ZOO, SCHEDULER)
    demo.block_thread()


if __name__ == "__main__":
    main()
