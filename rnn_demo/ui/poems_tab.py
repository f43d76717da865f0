"""The 诗 / Poems tab: a Tang poem of a regular form streams in, each character marked with its tone
(:func:`rnn_demo.serving.poems.poem_stream`, also the ``/poem`` endpoint)."""

from __future__ import annotations

from html import escape

import gradio as gr

from rnn_demo.serving.poems import DEFAULT_FORM, DEFAULT_POEM_TEMPERATURE, MAX_MOOD_CHARS, poem_stream
from rnn_demo.serving.requests import MAX_TEMPERATURE, RANDOM_SEED
from rnn_demo.serving.worker import GenerationWorker
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import shown_as_gradio_errors
from rnn_demo.ui.generate_tab import GENERATION_CONCURRENCY_ID
from rnn_demo.ui.i18n import ENGLISH, i18n, request_language, server_text

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


def build_poems_tab(poem_zoo: ModelZoo, worker: GenerationWorker, concurrency_limit: int) -> None:
    """The tab and its events, inside the caller's ``gr.Blocks``; it shares generation's limit."""
    from rnn_demo.poetry.rules import FORMS

    with gr.Tab(i18n("poems.tab")):
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
                acrostic = gr.Textbox(label=i18n("poems.acrostic"), info=i18n("poems.acrostic_info"), max_lines=1,
                                      elem_id="poem-acrostic")
                first_line = gr.Textbox(label=i18n("poems.first_line"), info=i18n("poems.first_line_info"),
                                        max_lines=1, elem_id="poem-first-line")
                mood = gr.Textbox(label=i18n("poems.mood"), info=i18n("poems.mood_info"), max_lines=1,
                                  max_length=MAX_MOOD_CHARS, elem_id="poem-mood")
                with gr.Row():
                    temperature = gr.Slider(0, MAX_TEMPERATURE, value=DEFAULT_POEM_TEMPERATURE, step=0.05,
                                            label=i18n("common.temperature"))
                    seed = gr.Number(value=DEFAULT_POEM_SEED, precision=0, label=i18n("common.seed"),
                                     info=i18n("poems.seed_info"))
                with gr.Row():
                    write_button = gr.Button(i18n("poems.button"), variant="primary", elem_id="poem-write")
                    stop_button = gr.Button(i18n("common.stop"), variant="stop", elem_id="poem-stop")
            with gr.Column(scale=2):
                poem = gr.HTML("", elem_id="poem")
                gr.Markdown(i18n("poems.legend"))

    def write_for_page(form, acrostic, first_line, rhyme, tones, temperature, seed, mood, request: gr.Request):
        language = request_language(request)
        seed = RANDOM_SEED if seed is None else seed
        updates = poem_stream(poem_zoo, form, acrostic, first_line, rhyme, tones, temperature, seed, mood, worker=worker)
        try:
            for text in shown_as_gradio_errors(updates):
                yield poem_html(text, form, language)
        finally:  # Stop, cancel or disconnect: end the generation
            updates.close()

    writing = write_button.click(
        write_for_page,
        inputs=[form, acrostic, first_line, rhyme, tones, temperature, seed, mood],
        outputs=poem,
        api_visibility="private",
        concurrency_limit=concurrency_limit,
        concurrency_id=GENERATION_CONCURRENCY_ID,
        show_progress="minimal",
    )
    stop_button.click(fn=None, cancels=[writing], queue=False)
