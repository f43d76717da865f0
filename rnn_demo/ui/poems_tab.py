"""The 诗 / Poems tab: a Tang poem of a regular form streams in, each character marked with its tone
(:func:`rnn_demo.serving.poems.poem_stream`, also the ``/poem`` endpoint); under it, the checker
reads any poem, or the one just written, by the rules and by the poem model
(:func:`rnn_demo.serving.poems.check_poem_request`, also ``/check_poem``), coloured like the
Inside tab's view of what the model expected."""

from __future__ import annotations

from html import escape

import gradio as gr

from rnn_demo.serving.poems import (
    DEFAULT_FORM,
    DEFAULT_POEM_TEMPERATURE,
    MAX_CHECK_CHARS,
    MAX_MOOD_CHARS,
    check_poem_request,
    poem_stream,
)
from rnn_demo.serving.requests import MAX_TEMPERATURE, RANDOM_SEED
from rnn_demo.serving.worker import GenerationWorker
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import answered_or_gradio_error, shown_as_gradio_errors
from rnn_demo.ui.generate_tab import GENERATION_CONCURRENCY_ID
from rnn_demo.ui.i18n import ENGLISH, POEMS_TAB_ID, i18n, request_language, server_text
from rnn_demo.ui.inside_tab import (
    CONFIDENCE_BANDS,
    VIEWS_CONCURRENCY_ID,
    VIEWS_CONCURRENCY_LIMIT,
    band_of,
    confidence_legend,
)

DEFAULT_POEM_SEED = 7


def poem_html(poem: str, form: str, language: str = ENGLISH) -> str:
    """A poem (or the part written so far) one couplet a row, each character with its tones above it
    (平, 仄, both, or ? where the rhyme book lacks it) and the rhyming ends underlined; under it, the
    rhyme group the even lines share, once the poem is whole."""
    from rnn_demo.poetry.rhyme import rhyme_book
    from rnn_demo.poetry.rules import FORMS, check

    book = rhyme_book()
    report = check(poem, FORMS[form], book)
    rows = []
    for row in poem.split("\n"):
        cells = []
        for place, char in enumerate(row):
            if char in "，。":
                cells.append(f'<span class="poem-punctuation">{char}</span>')
                continue
            tones = "".join(sorted(book.tones(char), key="平仄".index)) or "?"
            rhyming = row[place + 1 : place + 2] == "。"  # the end of a couplet's second line
            style = "text-decoration: underline; font-weight: bold" if rhyming else ""
            cells.append(
                f'<ruby class="poem-char" data-tones="{tones}" style="{style}">{escape(char)}'
                f'<rt style="font-size: 11px; opacity: 0.7">{tones}</rt></ruby>'
            )
        rows.append(f'<div class="poem-row" style="font-size: 24px; letter-spacing: 4px">{"".join(cells)}</div>')
    note = ""
    if report.form_ok:
        ends = [line[-1] for line in report.lines[1::2]]
        shared = frozenset.intersection(*(book.groups(end) for end in ends))
        if shared:
            note = server_text("poems.rhyme_group", language, group="、".join(sorted(shared)))
        else:
            note = server_text("poems.no_rhyme", language)
        if not report.tones_ok:
            note += " " + server_text("poems.tones_broken", language, count=len(report.broken))
    return f'<div class="poem">{"".join(rows)}<div class="poem-note" style="margin-top: 8px">{escape(note)}</div></div>'


def checked_poem_html(answer: dict, language: str = ENGLISH) -> str:
    """A /check_poem answer for the page: a line a row, each character with its tones above it and
    the colour of the probability the model gave it (what it expected there as a hover title), the
    places that break 格律 outlined in red, each line's end groups beside it; under it, a summary."""
    from rnn_demo.poetry.rules import FORMS

    broken = {(place["line"], place["place"]): place["rule"][0] for place in answer["broken"]}  # the tone asked
    rows = []
    for number, line in enumerate(answer["lines"], start=1):
        cells = []
        for place, entry in enumerate(line["chars"], start=1):
            expected = " ".join(f"{char} {prob:.3f}" for char, prob in entry["expected"])
            title = server_text("poems.expected", language, prob=entry["prob"], expected=expected)
            style = f"background: {CONFIDENCE_BANDS[band_of(entry['prob'])][2]}; padding: 0 2px"
            if (number, place) in broken:
                style += "; outline: 2px solid rgb(220, 38, 38)"
                title += " · " + server_text(
                    "poems.broken_place", language, line=number, place=place, tone=broken[number, place]
                )
            cells.append(
                f'<ruby class="poem-char" data-tones="{entry["tones"] or "?"}" data-prob="{entry["prob"]:.6f}" '
                f'style="{style}" title="{escape(title)}">{escape(entry["char"])}'
                f'<rt style="font-size: 11px; opacity: 0.7">{entry["tones"] or "?"}</rt></ruby>'
            )
        groups = "、".join(line["end_groups"]) or "—"
        rows.append(
            f'<div class="poem-row" style="font-size: 24px; letter-spacing: 4px">{"".join(cells)}'
            f'<span class="poem-groups" title="{escape(server_text("poems.end_groups", language))}" '
            f'style="font-size: 13px; letter-spacing: 0; margin-left: 12px; opacity: 0.75">{escape(groups)}</span></div>'
        )
    if answer["form"]:
        notes = [server_text("poems.check_form", language, name=FORMS[answer["form"]].name, form=answer["form"])]
    else:
        notes = [server_text("poems.check_no_form", language)]
    if answer["rhymes"]:
        notes.append(server_text("poems.rhyme_group", language, group="、".join(answer["rhyme_groups"])))
    elif len(answer["lines"]) > 3:
        notes.append(server_text("poems.no_rhyme", language))
    if answer["tones_ok"]:
        notes.append(server_text("poems.tones_ok", language))
    elif answer["broken"]:
        notes.append(server_text("poems.tones_broken", language, count=len(answer["broken"])))
    if answer["bits_per_char"] is not None:
        notes.append(server_text("poems.check_bits", language, bpc=answer["bits_per_char"]))
    note = f'<div class="poem-note" style="margin-top: 8px">{escape(" ".join(notes))}</div>'
    return f'{confidence_legend(language, first=False)}<div class="poem-checked">{"".join(rows)}</div>{note}'


def build_poems_tab(poem_zoo: ModelZoo, worker: GenerationWorker, concurrency_limit: int) -> None:
    """The tab and its events, inside the caller's ``gr.Blocks``; it shares generation's limit."""
    from rnn_demo.poetry.rules import FORMS

    with gr.Tab(i18n("poems.tab"), elem_id=POEMS_TAB_ID):
        gr.Markdown(i18n("poems.intro"))
        with gr.Row():
            with gr.Column(scale=2):
                form = gr.Radio(
                    choices=[(f"{value.name} {key}", key) for key, value in FORMS.items()],
                    value=DEFAULT_FORM,
                    label=i18n("poems.form"),
                    elem_id="poem-form",
                )
                with gr.Row():
                    rhyme = gr.Checkbox(value=True, label=i18n("poems.rhyme"), elem_id="poem-rhyme")
                    tones = gr.Checkbox(value=True, label=i18n("poems.tones"), elem_id="poem-tones")
                acrostic = gr.Textbox(
                    label=i18n("poems.acrostic"), info=i18n("poems.acrostic_info"), max_lines=1, elem_id="poem-acrostic"
                )
                first_line = gr.Textbox(
                    label=i18n("poems.first_line"),
                    info=i18n("poems.first_line_info"),
                    max_lines=1,
                    elem_id="poem-first-line",
                )
                mood = gr.Textbox(
                    label=i18n("poems.mood"),
                    info=i18n("poems.mood_info"),
                    max_lines=1,
                    max_length=MAX_MOOD_CHARS,
                    elem_id="poem-mood",
                )
                with gr.Row():
                    temperature = gr.Slider(
                        0, MAX_TEMPERATURE, value=DEFAULT_POEM_TEMPERATURE, step=0.05, label=i18n("common.temperature")
                    )
                    seed = gr.Number(
                        value=DEFAULT_POEM_SEED, precision=0, label=i18n("common.seed"), info=i18n("poems.seed_info")
                    )
                with gr.Row():
                    write_button = gr.Button(i18n("poems.button"), variant="primary", elem_id="poem-write")
                    stop_button = gr.Button(i18n("common.stop"), variant="stop", elem_id="poem-stop")
            with gr.Column(scale=2):
                poem = gr.HTML("", elem_id="poem")
                gr.Markdown(i18n("poems.legend"))
        gr.Markdown(i18n("poems.check_title"))
        gr.Markdown(i18n("poems.check_intro"))
        with gr.Row():
            with gr.Column(scale=2):
                check_text = gr.Textbox(
                    label=i18n("poems.check_text"),
                    lines=4,
                    max_lines=10,
                    max_length=MAX_CHECK_CHARS,
                    elem_id="poem-check-text",
                )
                check_button = gr.Button(i18n("poems.check_button"), elem_id="poem-check")
            with gr.Column(scale=2):
                checked = gr.HTML("", elem_id="poem-checked")

    def write_for_page(form, acrostic, first_line, rhyme, tones, temperature, seed, mood, request: gr.Request):
        language = request_language(request)
        seed = RANDOM_SEED if seed is None else seed
        updates = poem_stream(
            poem_zoo, form, acrostic, first_line, rhyme, tones, temperature, seed, mood, worker=worker
        )
        text = ""
        try:
            for text in shown_as_gradio_errors(updates, language):
                yield poem_html(text, form, language), gr.skip()
        finally:  # Stop, cancel or disconnect: end the generation
            updates.close()
        yield gr.skip(), text  # the whole poem goes to the checker, which reads it next

    def check_for_page(text, request: gr.Request):
        language = request_language(request)
        answer = answered_or_gradio_error(check_poem_request, poem_zoo, text, language=language)
        return checked_poem_html(answer, language)

    checking = {
        "fn": check_for_page,
        "inputs": check_text,
        "outputs": checked,
        "api_visibility": "private",
        "concurrency_limit": VIEWS_CONCURRENCY_LIMIT,
        "concurrency_id": VIEWS_CONCURRENCY_ID,
    }
    check_button.click(**checking)
    writing = write_button.click(
        write_for_page,
        inputs=[form, acrostic, first_line, rhyme, tones, temperature, seed, mood],
        outputs=[poem, check_text],
        api_visibility="private",
        concurrency_limit=concurrency_limit,
        concurrency_id=GENERATION_CONCURRENCY_ID,
        show_progress="minimal",
    )
    writing.success(**checking)
    stop_button.click(fn=None, cancels=[writing], queue=False)
