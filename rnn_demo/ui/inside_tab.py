"""The "Inside the network" tab: a text coloured by what a model expected at each character
(click one for its alternatives), and by one hidden unit's activation, with the units that follow
simple features of the text ranked.

The text is built on the server as escaped ``<span data-i=...>`` per character; the browser
reports a click on one as a ``pick`` event with its index. Validation, caps and the work are in
:mod:`rnn_demo.serving.views`, shared with the ``/explain`` and ``/neurons`` endpoints.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from html import escape

import gradio as gr
import numpy as np

from rnn_demo.serving.poems import poem_stream
from rnn_demo.serving.requests import DEFAULT_TEMPERATURE, MAX_VIEW_CHARS, RANDOM_SEED, initial_model
from rnn_demo.serving.streaming import generate_stream
from rnn_demo.serving.training_jobs import Trainer
from rnn_demo.serving.views import DEFAULT_ALTERNATIVES, explain_request, units_request
from rnn_demo.serving.worker import GenerationWorker
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import answered_or_gradio_error, shown_as_gradio_errors
from rnn_demo.ui.generate_tab import (
    EXAMPLE_PROMPTS,
    GENERATION_CONCURRENCY_ID,
    POEM_MODEL,
    chosen_model,
    hidden_sizes_update,
    model_dropdowns,
    resolve_model,
)
from rnn_demo.ui.i18n import ENGLISH, i18n, page_text, request_language, server_text

# The page's views and the /explain, /score and /neurons endpoints share this limit, apart from
# generation's: each reads a text in one forward pass (``python -m benchmarks.views``) on the CPU.
VIEWS_CONCURRENCY_ID = "views"
VIEWS_CONCURRENCY_LIMIT = 2
GENERATED_CHARS = 400  # "Generate a text" writes this many characters after an example prompt
EXAMPLE_TEXT = (
    "ROMEO:\n"
    "But soft, what light through yonder window breaks?\n"
    "It is the east, and Juliet is the sun.\n"
    "\n"
    "JULIET:\n"
    "O Romeo, Romeo! wherefore art thou Romeo?\n"
)
EXAMPLE_POEM = "\n\n静夜思\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n"  # the poem model's example, as the corpus lays it out

# Probability bands of the confidence view, most confident first: (lowest probability, label,
# background). Translucent colours read on light and dark pages alike.
CONFIDENCE_BANDS = [
    (0.5, "p ≥ 0.5", "rgba(22, 163, 74, 0.40)"),
    (0.1, "0.1 ≤ p < 0.5", "rgba(132, 204, 22, 0.40)"),
    (0.01, "0.01 ≤ p < 0.1", "rgba(234, 179, 8, 0.45)"),
    (0.001, "0.001 ≤ p < 0.01", "rgba(249, 115, 22, 0.50)"),
    (0.0, "p < 0.001", "rgba(220, 38, 38, 0.55)"),
]
POSITIVE, NEGATIVE = (220, 38, 38), (37, 99, 235)  # the neuron view: +1 red, -1 blue

TEXT_STYLE = (
    "font-family: ui-monospace, monospace; font-size: 15px; line-height: 1.7; white-space: pre-wrap; "
    "word-break: break-all; padding: 8px"
)
# The browser's part: mark the clicked character and report its index as the "pick" event.
PICK_JS = (
    "element.addEventListener('click', (event) => {"
    " const span = event.target.closest('[data-i]');"
    " if (!span) return;"
    " element.querySelectorAll('.picked').forEach((other) => other.classList.remove('picked'));"
    " span.classList.add('picked');"
    " trigger('pick', {index: Number(span.dataset.i)}); });"
)
PICKED_CSS = ".picked { outline: 2px solid currentColor; outline-offset: 1px; }"  # scoped to the component by Gradio


def shown_char(char: str) -> str:
    """A character as a reader sees it in a list: newline and space made visible."""
    return {"\n": "↵ (newline)", " ": "␣ (space)", "\t": "⇥ (tab)"}.get(char, char)


def _span(index: int, char: str, style: str, title: str) -> str:
    """One character of a coloured text. A newline shows as ↵ and then breaks the line."""
    visible = "↵" if char == "\n" else escape(char)
    span = f'<span data-i="{index}" style="{style}" title="{escape(title)}">{visible}</span>'
    return span + ("\n" if char == "\n" else "")


def band_of(prob: float) -> int:
    """The index in CONFIDENCE_BANDS of a probability."""
    return next(i for i, (low, _, _) in enumerate(CONFIDENCE_BANDS) if prob >= low)


def confidence_legend(language: str = ENGLISH, first: bool = True) -> str:
    """The colours of the probability bands, and (``first``) the mark of the unpredicted first character."""
    items = "".join(
        f'<span style="background: {colour}; padding: 1px 6px; margin-right: 6px; border-radius: 3px">{escape(label)}</span>'
        for _, label, colour in CONFIDENCE_BANDS
    )
    unpredicted = (
        f'<span style="outline: 1px dashed currentColor; padding: 1px 6px">'
        f"{escape(server_text('inside.no_prediction', language))}</span>"
    )
    return (
        f'<div style="font-size: 13px; margin: 4px 0 8px">{escape(server_text("inside.confidence_legend", language))} '
        f"{items}{unpredicted if first else ''}</div>"
    )


def confidence_html(explanation: dict, language: str = ENGLISH) -> str:
    """The text of an /explain answer, each character coloured by the probability the model gave
    it, with its alternatives as a hover title, under a legend, both in ``language``; a click reports
    the character's index."""
    spans = []
    for i, entry in enumerate(explanation["chars"]):
        if entry["prob"] is None:
            style = "outline: 1px dashed currentColor"
            title = server_text("inside.title_first", language, char=entry["char"])
        else:
            style = f"background: {CONFIDENCE_BANDS[band_of(entry['prob'])][2]}; cursor: pointer"
            likeliest = ", ".join(f"{char!r} {prob:.2f}" for char, prob in entry["top"])
            title = server_text("inside.title_char", language, char=entry["char"], prob=entry["prob"],
                                bits=entry["bits"], likeliest=likeliest)  # fmt: skip
        spans.append(_span(i, entry["char"], style, title))
    return confidence_legend(language) + f'<div style="{TEXT_STYLE}">{"".join(spans)}</div>'


def alternatives(explanation: dict | None, index, language: str = ENGLISH) -> tuple[str, dict | None]:
    """What the page shows for the character at ``index``: a sentence in ``language``, and the
    gr.Label value of its top alternatives ({shown character: probability})."""
    chars = explanation["chars"] if explanation else []
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(chars):
        return server_text("inside.click_a_character", language), None
    entry = chars[index]
    if entry["prob"] is None:
        return server_text("inside.first_character", language, char=shown_char(entry["char"])), None
    sentence = server_text(
        "inside.character",
        language,
        number=index + 1,
        char=shown_char(entry["char"]),
        prob=entry["prob"],
        bits=entry["bits"],
    )
    return sentence, {shown_char(char): prob for char, prob in entry["top"]}


def activation_colour(value: float) -> str:
    """-1 blue … 0 clear … +1 red (values beyond ±1, an LSTM's, are clipped)."""
    strength = min(abs(value), 1.0)
    red, green, blue = POSITIVE if value >= 0 else NEGATIVE
    return f"rgba({red}, {green}, {blue}, {0.85 * strength:.2f})"


def activation_legend(language: str = ENGLISH) -> str:
    steps = [-1.0, -0.5, 0.0, 0.5, 1.0]
    items = "".join(
        f'<span style="background: {activation_colour(v)}; padding: 1px 8px; margin-right: 4px; border-radius: 3px">{v:+.1f}</span>'
        for v in steps
    )
    legend = escape(server_text("inside.activation_legend", language))
    return f'<div style="font-size: 13px; margin: 4px 0 8px">{legend} {items}</div>'


def activation_html(chars: list[str], values, language: str = ENGLISH) -> str:
    """The text coloured by one unit's activation after each character, the value as a hover title,
    under a legend in ``language``."""
    spans = [
        _span(i, char, f"background: {activation_colour(float(value))}", f"{char!r}: {float(value):+.3f}")
        for i, (char, value) in enumerate(zip(chars, values))
    ]
    return activation_legend(language) + f'<div style="{TEXT_STYLE}">{"".join(spans)}</div>'


def layer_choices(zoo: ModelZoo, cell: str | None, hidden_size, language: str | None = None) -> list[tuple[str, int]]:
    """The layer dropdown's choices, labelled in ``language`` (or, while the page is built, for the
    browser to translate)."""

    def label(key: str, layer: int):
        return page_text(key, layer=layer) if language is None else server_text(key, language, layer=layer)

    try:
        info = zoo.info(cell, int(hidden_size))
    except (KeyError, TypeError, ValueError):
        return [(label("inside.layer_choice", 0), 0)]
    keys = ["inside.layer_choice"] * info.num_layers
    if info.num_layers > 1:
        keys[0], keys[-1] = "inside.layer_bottom", "inside.layer_top"
    return [(label(key, k), k) for k, key in enumerate(keys)]


UNIT_COLUMNS = ["unit", "feature", "correlation"]  # the table's columns: "inside.column_<name>" on the page
# The page's names of the features of rnn_demo.analysis.units.FEATURES: "inside.feature_<key>".
FEATURE_KEYS = {
    "inside quotes or brackets": "quotes",
    "position in the line": "position",
    "first line after a speaker's name": "speaker",
    "uppercase": "uppercase",
    "vowel": "vowel",
    "space": "space",
}
# The last readings the page keeps, one per browser session, for a click on a character or a move of
# the unit slider. Kept on the server rather than in gr.State: a page with a gr.State makes every
# Gradio client (the JavaScript one included) hold a heartbeat connection open, for the API too.
# Each reading holds at most MAX_VIEW_CHARS × hidden_size float16 values and the explanation.
READINGS_KEPT = 32


def unit_rows(units: list[dict], language: str = ENGLISH):
    """The "interesting units" table: unit, the feature it follows, the correlation, with its
    headers and features in ``language`` (a DataFrame's columns are the headers Gradio shows)."""
    import pandas as pd

    rows = [
        [u["unit"], server_text(f"inside.feature_{FEATURE_KEYS[u['feature']]}", language), round(u["correlation"], 3)]
        for u in units
    ]
    return pd.DataFrame(rows, columns=[server_text(f"inside.column_{name}", language) for name in UNIT_COLUMNS])


@dataclass(frozen=True)
class Reading:
    """One session's last reading: the /explain answer, and the shown layer's states (characters × units)."""

    explanation: dict
    chars: list[str]
    h: np.ndarray

    @property
    def units(self) -> int:
        return self.h.shape[1]

    def unit(self, unit) -> int:
        """``unit`` as a valid unit index (the slider can send a float, or a size's old maximum)."""
        try:
            return min(max(int(unit), 0), self.units - 1)
        except (TypeError, ValueError):
            return 0


class Readings:
    """The last reading of each of the ``capacity`` most recent sessions (least recently used out)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._lock = threading.Lock()
        self._readings: OrderedDict[str, Reading] = OrderedDict()

    def put(self, session: str, reading: Reading) -> None:
        with self._lock:
            self._readings[session] = reading
            self._readings.move_to_end(session)
            while len(self._readings) > self.capacity:
                self._readings.popitem(last=False)

    def get(self, session: str) -> Reading | None:
        with self._lock:
            reading = self._readings.get(session)
            if reading is not None:
                self._readings.move_to_end(session)
            return reading


def build_inside_tab(
    zoo: ModelZoo, worker: GenerationWorker, concurrency_limit: int, trainer: Trainer, poem_zoo: ModelZoo
) -> gr.Dropdown:
    """The tab and its events, inside the caller's ``gr.Blocks``; returns its cell dropdown. "Generate
    a text" shares the generation limit (``concurrency_limit``) with the Generate tab and /generate.
    The cell YOUR_MODEL reads with the session's own model (``trainer.remember``), POEM_MODEL with
    ``poem_zoo``'s poem model (and "Generate a text" writes a poem)."""
    first = initial_model(zoo)
    initial_cell = first.cell if first is not None else None
    initial_size = first.hidden_size if first is not None else None
    views = {
        "concurrency_limit": VIEWS_CONCURRENCY_LIMIT,
        "concurrency_id": VIEWS_CONCURRENCY_ID,
        "api_visibility": "private",
    }
    with gr.Tab(i18n("inside.tab")):
        gr.Markdown(i18n("inside.intro"))
        with gr.Row():
            cell, hidden_size = model_dropdowns(zoo, "inside-cell", "inside-hidden-size", poems=poem_zoo)
        text = gr.Textbox(
            label=i18n("inside.text"),
            value=EXAMPLE_TEXT,
            lines=6,
            max_lines=12,
            max_length=MAX_VIEW_CHARS,
            elem_id="inside-text",
        )
        with gr.Row():
            read_button = gr.Button(i18n("inside.read"), variant="primary", elem_id="inside-read")
            generate_button = gr.Button(i18n("inside.generate"), elem_id="inside-generate")
        with gr.Tab(i18n("inside.expected_tab")):
            summary = gr.Markdown(elem_id="confidence-summary")
            confidence = gr.HTML("", js_on_load=PICK_JS, elem_id="confidence-view", css_template=PICKED_CSS)
            picked = gr.Markdown(i18n("inside.click_a_character"), elem_id="picked-char")
            expected = gr.Label(
                label=i18n("inside.alternatives"), num_top_classes=DEFAULT_ALTERNATIVES, elem_id="alternatives"
            )
        with gr.Tab(i18n("inside.neuron_tab")):
            with gr.Row():
                layer = gr.Dropdown(
                    label=i18n("inside.layer"),
                    choices=layer_choices(zoo, initial_cell, initial_size),
                    value=0,
                    elem_id="inside-layer",
                )
                unit = gr.Slider(
                    0,
                    max((initial_size or 1) - 1, 1),
                    value=0,
                    step=1,
                    precision=0,
                    label=i18n("inside.unit"),
                    elem_id="inside-unit",
                )
            activation = gr.HTML("", js_on_load=None, elem_id="neuron-view")
            gr.Markdown(i18n("inside.units_intro"))
            # Shown from the first reading on, with its headers in the page's language (unit_rows).
            units_table = gr.Dataframe(interactive=False, visible=False, elem_id="units-table")
        readings = Readings(READINGS_KEPT)

        def resolve(cell, hidden_size, request: gr.Request):
            return answered_or_gradio_error(
                resolve_model, trainer, zoo, cell, hidden_size, request.session_hash, poem_zoo,
                language=request_language(request),
            )  # fmt: skip

        def read(text, cell, hidden_size, layer, unit, request: gr.Request):
            language = request_language(request)
            source, cell, hidden_size = resolve(cell, hidden_size, request)
            explained = answered_or_gradio_error(
                explain_request, source, text, cell, hidden_size, DEFAULT_ALTERNATIVES, language=language
            )
            layer_view = answered_or_gradio_error(
                units_request, source, text, cell, hidden_size, layer or 0, language=language
            )
            line = server_text(
                "inside.summary",
                language,
                model=explained["model"],
                chars=len(explained["chars"]),
                bpc=explained["bits_per_char"],
            )
            if explained["skipped"]:
                shown = " ".join(repr(c) for c in explained["skipped"][:20])
                line += server_text("inside.summary_skipped", language, shown=shown)
            reading = Reading(explained, layer_view["chars"], layer_view["h"].astype(np.float16))
            readings.put(request.session_hash, reading)
            unit = reading.unit(unit)
            sentence, _ = alternatives(None, None, language)
            return (
                line,
                confidence_html(explained, language),
                sentence,
                None,
                gr.update(maximum=reading.units - 1, value=unit),
                activation_html(reading.chars, reading.h[:, unit], request_language(request)),
                gr.update(value=unit_rows(layer_view["units"], language), visible=True),
            )

        read_outputs = [summary, confidence, picked, expected, unit, activation, units_table]
        read_event = dict(fn=read, inputs=[text, cell, hidden_size, layer, unit], outputs=read_outputs, **views)
        read_button.click(**read_event)

        def pick(evt: gr.EventData, request: gr.Request):
            reading = readings.get(request.session_hash)
            language = request_language(request)
            if reading is None:
                return server_text("inside.read_again", language), None
            data = getattr(evt, "_data", None)  # what the browser sent with trigger('pick', ...)
            index = data.get("index") if isinstance(data, dict) else None
            return alternatives(reading.explanation, index, language)

        confidence.pick(pick, outputs=[picked, expected], api_visibility="private", queue=False)

        def show_unit(unit, request: gr.Request):
            reading = readings.get(request.session_hash)
            if reading is None:
                return gr.skip()
            return activation_html(reading.chars, reading.h[:, reading.unit(unit)], request_language(request))

        unit.change(
            show_unit, inputs=[unit], outputs=activation, api_visibility="private", queue=False, show_progress="hidden"
        )

        def select_unit(evt: gr.SelectData):
            row = evt.row_value if evt is not None else None
            return gr.update(value=int(row[0])) if row else gr.skip()

        units_table.select(select_unit, outputs=unit, api_visibility="private", queue=False)

        def read_layer(text, cell, hidden_size, layer, unit, request: gr.Request):
            before = readings.get(request.session_hash)
            if before is None:  # nothing read yet: the layer is used by the next reading
                return gr.skip(), gr.skip(), gr.skip()
            source, cell, hidden_size = resolve(cell, hidden_size, request)
            layer_view = answered_or_gradio_error(
                units_request, source, text, cell, hidden_size, layer or 0, language=request_language(request)
            )
            reading = Reading(before.explanation, layer_view["chars"], layer_view["h"].astype(np.float16))
            readings.put(request.session_hash, reading)
            unit = reading.unit(unit)
            return (
                gr.update(maximum=reading.units - 1, value=unit),
                activation_html(reading.chars, reading.h[:, unit], request_language(request)),
                gr.update(value=unit_rows(layer_view["units"], request_language(request)), visible=True),
            )

        layer.input(
            read_layer,
            inputs=[text, cell, hidden_size, layer, unit],
            outputs=[unit, activation, units_table],
            **views,
        )

        def generate_text(cell, hidden_size, request: gr.Request):
            language = request_language(request)
            if cell == POEM_MODEL:
                yield from write_poem(language)
                return
            source, cell, hidden_size = resolve(cell, hidden_size, request)
            prompt = EXAMPLE_PROMPTS[secrets.randbelow(len(EXAMPLE_PROMPTS))]
            updates = generate_stream(
                source,
                prompt,
                cell,
                hidden_size,
                DEFAULT_TEMPERATURE,
                GENERATED_CHARS,
                0,
                1.0,
                RANDOM_SEED,
                worker=worker,
            )
            try:
                for generated, _ in shown_as_gradio_errors(updates, language):
                    yield generated
            finally:
                updates.close()

        def write_poem(language: str):
            updates = poem_stream(poem_zoo, worker=worker)  # a 五言绝句 that rhymes, with a random seed
            try:
                for poem in shown_as_gradio_errors(updates, language):
                    yield "\n\n无题\n" + poem  # read as the corpus lays a poem out
            finally:
                updates.close()

        generate_button.click(
            generate_text,
            inputs=[cell, hidden_size],
            outputs=text,
            api_visibility="private",
            concurrency_limit=concurrency_limit,
            concurrency_id=GENERATION_CONCURRENCY_ID,
            show_progress="minimal",
        ).success(**read_event)

        def update_model_choices(cell, current, text, request: gr.Request):
            poems = cell == POEM_MODEL
            source, cell, _ = chosen_model(trainer, zoo, cell, current, request.session_hash, poem_zoo)
            sizes = hidden_sizes_update(source, cell, current, request_language(request))
            # The other model's example text goes with the model; the visitor's own text stays.
            example = {EXAMPLE_TEXT: EXAMPLE_POEM} if poems else {EXAMPLE_POEM: EXAMPLE_TEXT}
            layers = layer_choices(source, cell, sizes["value"], request_language(request))
            return sizes, gr.update(choices=layers, value=0), example.get(text, gr.skip())

        cell.change(
            update_model_choices,
            inputs=[cell, hidden_size, text],
            outputs=[hidden_size, layer, text],
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )

        def update_layers(cell, size, request: gr.Request):
            source, cell, size = chosen_model(trainer, zoo, cell, size, request.session_hash, poem_zoo)
            return gr.update(choices=layer_choices(source, cell, size, request_language(request)), value=0)

        hidden_size.input(
            update_layers,
            inputs=[cell, hidden_size],
            outputs=layer,
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
        return cell
