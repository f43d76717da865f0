"""The Generate tab: a prompt, the model and the sampling settings; the text streams in, Stop ends it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import gradio as gr

from rnn_demo.serving.poems import poem_model
from rnn_demo.serving.requests import (
    DEFAULT_NEW_CHARS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_K,
    DEFAULT_TOP_P,
    MAX_NEW_CHARS,
    MAX_PROMPT_CHARS,
    MAX_TEMPERATURE,
    RANDOM_SEED,
    RequestError,
    initial_model,
)
from rnn_demo.serving.streaming import RunStatus, generate_stream
from rnn_demo.serving.training_jobs import YOUR_MODEL, TrainedModel, Trainer
from rnn_demo.serving.worker import GenerationWorker
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import (
    answered_or_gradio_error,
    cell_label,
    format_count,
    shown_as_gradio_errors,
    status_line,
)
from rnn_demo.ui.i18n import ENGLISH, i18n, page_text, request_language, server_text

MAX_TOP_K_SLIDER = 100  # the slider's end; the API accepts any top_k >= 0 (0 = off)
STOP_GRACE_MS = 500  # Stop waits this long for the generator to end by itself before cancelling it
GENERATION_CONCURRENCY_ID = "generate"  # the page's button and the /generate API share one limit
# The value the Inside tab's cell dropdown takes for the poem model (see resolve_model).
POEM_MODEL = "tang"
EXAMPLE_PROMPTS = [
    "ROMEO:\n",
    "First Citizen:\nBefore we proceed any further, ",
    "KING HENRY VI:\nMy lords, ",
    "To be, or not to be",
]


def hidden_size_choices(zoo: ModelZoo, cell: str, language: str | None = None) -> list[tuple[str, int]]:
    """Dropdown choices for a cell: (label, hidden size), smallest first; labelled in ``language``,
    or, while the page is built, for the browser to translate."""
    choices = []
    for size in zoo.hidden_sizes(cell):
        info = zoo.info(cell, size)
        fields = {"layers": f"{info.num_layers}×" if info.num_layers > 1 else "", "size": size,
                  "params": format_count(info.params)}  # fmt: skip
        label = (
            page_text("model.size_choice", **fields)
            if language is None
            else server_text("model.size_choice", language, **fields)
        )
        choices.append((label, size))
    return choices


def model_dropdowns(
    zoo: ModelZoo, cell_id: str, size_id: str, poems: ModelZoo | None = None
) -> tuple[gr.Dropdown, gr.Dropdown]:
    """The cell and hidden-size dropdowns, preselecting :func:`initial_model` (with ``poems``, the
    poem model is a choice too, POEM_MODEL)."""
    first = initial_model(zoo)
    initial_cell = first.cell if first is not None else None
    cell = gr.Dropdown(
        label=i18n("common.cell_type"), choices=cell_choices(zoo, poems=poems), value=initial_cell, elem_id=cell_id
    )
    hidden_size = gr.Dropdown(
        label=i18n("common.hidden_size"),
        choices=hidden_size_choices(zoo, initial_cell) if initial_cell else [],
        value=first.hidden_size if first is not None else None,
        elem_id=size_id,
        # The choices follow the cell in the browser; the server checks the size itself
        # (validate_request), so a session whose updated choices Gradio has dropped
        # (STATE_SESSION_CAPACITY) still works.
        allow_custom_value=True,
    )
    return cell, hidden_size


def cell_choices(
    zoo: ModelZoo, yours: TrainedModel | None = None, language: str | None = None, poems: ModelZoo | None = None
) -> list[tuple[str, str]]:
    """The cell dropdown's choices: the zoo's cells, the poem model of ``poems`` (if given and it has
    one), and the session's own trained model, if any (its key is the Train tab's). Labelled in
    ``language``, or, while the page is built, for the browser to translate."""
    choices = [(cell_label(c, language), c) for c in zoo.cells()]
    if poems is not None and poems.models():
        choices.append((cell_label(POEM_MODEL, language), POEM_MODEL))
    if yours is not None:
        choices.append((server_text("train.your_model", language or ENGLISH, name=yours.info.name), YOUR_MODEL))
    return choices


def resolve_model(
    trainer: Trainer, zoo: ModelZoo, cell, hidden_size, session: str, poems: ModelZoo | None = None
) -> tuple[ModelZoo, str, int]:
    """Where a page's request for (cell, hidden_size) goes: for POEM_MODEL the poem model of
    ``poems``, else ``Trainer.resolve`` (the shared zoo, or the session's own model). RequestError
    when there is no such model."""
    if cell == POEM_MODEL and poems is not None:
        info = poem_model(poems)
        return poems, info.cell, info.hidden_size
    return trainer.resolve(zoo, cell, hidden_size, session)


def chosen_model(
    trainer: Trainer, zoo: ModelZoo, cell, hidden_size, session: str, poems: ModelZoo | None = None
) -> tuple[ModelZoo, str | None, int | None]:
    """The (zoo, cell, hidden size) the page's dropdowns point at (:func:`resolve_model`);
    (zoo, None, None) when there is none any more."""
    try:
        return resolve_model(trainer, zoo, cell, hidden_size, session, poems)
    except RequestError:
        return zoo, None, None


def default_hidden_size(zoo: ModelZoo, cell: str | None, current: int | None = None) -> int | None:
    """Keep ``current`` when the cell has it, else the cell's largest model."""
    sizes = zoo.hidden_sizes(cell) if cell else []
    if current in sizes:
        return current
    return sizes[-1] if sizes else None


def hidden_sizes_update(zoo: ModelZoo, cell: str | None, current: int | None, language: str = ENGLISH) -> dict:
    """The hidden-size dropdown after the cell changed: that cell's sizes (labelled in ``language``),
    keeping ``current`` if it has it."""
    if cell not in zoo.cells():
        return gr.update(choices=[], value=None)
    return gr.update(choices=hidden_size_choices(zoo, cell, language), value=default_hidden_size(zoo, cell, current))


def page_updates(updates: Iterator[tuple[str, RunStatus]], language: str = ENGLISH):
    """(text, status line in ``language``) for the page, one per update of ``generate_stream``."""
    for text, status in updates:
        yield text, status_line(status, language)


class StopRequests:
    """The Stop button's way to the generation it stops: one flag per browser session.

    The generator checks its flag before every update and ends with a "stopped" status, so
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


def build_generate_tab(
    zoo: ModelZoo, worker: GenerationWorker, concurrency_limit: int, trainer: Trainer
) -> gr.Dropdown:
    """The tab and its events, inside the caller's ``gr.Blocks``; returns its cell dropdown. Every
    generation goes through ``worker``; at most ``concurrency_limit`` run at once, together with
    the /generate API's. The cell YOUR_MODEL is the session's own model (``trainer.remember``)."""
    with gr.Tab(i18n("generate.tab")):
        with gr.Row():
            with gr.Column(scale=2):
                prompt = gr.Textbox(
                    label=i18n("common.prompt"),
                    value=EXAMPLE_PROMPTS[0],
                    lines=4,
                    max_length=MAX_PROMPT_CHARS,
                    placeholder=i18n("generate.prompt_placeholder"),
                )
                with gr.Row():
                    cell, hidden_size = model_dropdowns(zoo, "cell", "hidden-size")
                temperature = gr.Slider(
                    0,
                    MAX_TEMPERATURE,
                    value=DEFAULT_TEMPERATURE,
                    step=0.05,
                    label=i18n("common.temperature"),
                    info=i18n("generate.temperature_info"),
                )
                max_new_chars = gr.Slider(
                    1, MAX_NEW_CHARS, value=DEFAULT_NEW_CHARS, step=1, precision=0, label=i18n("generate.max_new_chars")
                )
                with gr.Accordion(i18n("generate.advanced"), open=False):
                    top_k = gr.Slider(
                        0,
                        MAX_TOP_K_SLIDER,
                        value=DEFAULT_TOP_K,
                        step=1,
                        precision=0,
                        label=i18n("generate.top_k"),
                        info=i18n("generate.top_k_info"),
                    )
                    top_p = gr.Slider(
                        0.05,
                        1.0,
                        value=DEFAULT_TOP_P,
                        step=0.05,
                        label=i18n("generate.top_p"),
                        info=i18n("generate.top_p_info"),
                    )
                    seed = gr.Number(
                        value=RANDOM_SEED,
                        precision=0,
                        label=i18n("common.seed"),
                        info=i18n("generate.seed_info"),
                        elem_id="generate-seed",
                    )
                with gr.Row():
                    generate_button = gr.Button(i18n("generate.button"), variant="primary", elem_id="generate")
                    stop_button = gr.Button(i18n("common.stop"), variant="stop", elem_id="stop")
            with gr.Column(scale=3):
                output = gr.Textbox(
                    label=i18n("generate.text"),
                    lines=18,
                    max_lines=30,
                    interactive=False,
                    buttons=["copy"],
                    elem_id="output",
                )
                status = gr.Markdown(elem_id="status-line")
        gr.Examples(examples=[[p] for p in EXAMPLE_PROMPTS], inputs=[prompt], label=i18n("generate.examples"))

    # The page's Generate button and the public /generate endpoint run the same generator and
    # share one concurrency limit. They are two events because the page also streams the
    # status line, while API clients get only the text (predict() returns the final text).
    stops = StopRequests()

    def generate_for_page(
        prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed, request: gr.Request
    ):
        language = request_language(request)
        source, cell, hidden_size = answered_or_gradio_error(
            trainer.resolve, zoo, cell, hidden_size, request.session_hash, language=language
        )
        flag = stops.start(request.session_hash)
        updates = generate_stream(
            source,
            prompt,
            cell,
            hidden_size,
            temperature,
            max_new_chars,
            top_k,
            top_p,
            seed,
            should_stop=flag.is_set,
            worker=worker,
        )
        try:
            yield from page_updates(shown_as_gradio_errors(updates, language), language=language)
        finally:  # also when gradio closes this generator (cancel, disconnect): end the generation
            updates.close()
            stops.finish(request.session_hash, flag)

    generation = generate_button.click(
        generate_for_page,
        inputs=[prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed],
        outputs=[output, status],
        api_visibility="private",
        preprocess=False,  # generate_stream validates every value itself, with clearer messages
        concurrency_limit=concurrency_limit,
        concurrency_id=GENERATION_CONCURRENCY_ID,
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

    def sizes_of_cell(cell, current, request: gr.Request):
        source, cell, _ = chosen_model(trainer, zoo, cell, current, request.session_hash)
        return hidden_sizes_update(source, cell, current, request_language(request))

    cell.change(
        sizes_of_cell,
        inputs=[cell, hidden_size],
        outputs=hidden_size,
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    )
    return cell
