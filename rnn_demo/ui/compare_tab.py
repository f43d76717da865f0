"""The "Sizes side by side" tab: every hidden size of one cell continues the same prompt with the
same seed, one column each, streaming (:func:`rnn_demo.serving.views.compare_stream`, also the
``/compare`` endpoint)."""

from __future__ import annotations

from html import escape

import gradio as gr

from rnn_demo.serving.requests import (
    DEFAULT_TEMPERATURE,
    MAX_NEW_CHARS,
    MAX_PROMPT_CHARS,
    MAX_TEMPERATURE,
    initial_model,
)
from rnn_demo.serving.views import compare_stream
from rnn_demo.serving.worker import GenerationWorker
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import cell_label, shown_as_gradio_errors
from rnn_demo.ui.generate_tab import EXAMPLE_PROMPTS, GENERATION_CONCURRENCY_ID
from rnn_demo.ui.i18n import ENGLISH, i18n, request_language, server_text

DEFAULT_COMPARE_CHARS = 300
DEFAULT_COMPARE_SEED = 42


def columns_html(update: dict, language: str = ENGLISH) -> str:
    """One column per continuation of a /compare update: the model, its validation bits/char, the
    text; the words in ``language``."""
    columns = []
    for column in update["continuations"]:
        if column["val_bpc"] is not None:
            score = server_text("compare.score", language, bpc=column["val_bpc"])
        else:
            score = server_text("model.no_validation", language)
        state = server_text("compare.done" if column["done"] else "compare.writing", language)
        progress = server_text("compare.progress", language, chars=column["new_chars"])
        columns.append(
            f'<div class="compare-column" data-model="{escape(column["model"])}" '
            'style="flex: 1 1 0; min-width: 180px; border: 1px solid rgba(128, 128, 128, 0.35); '
            'border-radius: 8px; padding: 8px">'
            f'<div style="font-weight: bold">{escape(column["model"])}</div>'
            f'<div style="font-size: 12px; opacity: 0.8">{score} · {progress} · {state}</div>'
            '<div class="compare-text" style="font-family: ui-monospace, monospace; font-size: 13px; '
            f'white-space: pre-wrap; word-break: break-word; margin-top: 6px">{escape(column["text"])}</div>'
            "</div>"
        )
    return f'<div style="display: flex; gap: 10px; align-items: stretch">{"".join(columns)}</div>'


def build_compare_tab(zoo: ModelZoo, worker: GenerationWorker, concurrency_limit: int) -> None:
    """The tab and its events, inside the caller's ``gr.Blocks``; it shares the generation limit."""
    first = initial_model(zoo)
    with gr.Tab(i18n("compare.tab")):
        gr.Markdown(i18n("compare.intro"))
        with gr.Row():
            prompt = gr.Textbox(
                label=i18n("common.prompt"),
                value=EXAMPLE_PROMPTS[0],
                lines=2,
                max_length=MAX_PROMPT_CHARS,
                scale=3,
                elem_id="compare-prompt",
            )
            cell = gr.Dropdown(
                label=i18n("common.cell_type"),
                choices=[(cell_label(c), c) for c in zoo.cells()],
                value=first.cell if first is not None else None,
                elem_id="compare-cell",
            )
        with gr.Row():
            temperature = gr.Slider(
                0, MAX_TEMPERATURE, value=DEFAULT_TEMPERATURE, step=0.05, label=i18n("common.temperature")
            )
            max_new_chars = gr.Slider(
                1, MAX_NEW_CHARS, value=DEFAULT_COMPARE_CHARS, step=1, precision=0, label=i18n("compare.new_chars")
            )
            seed = gr.Number(
                value=DEFAULT_COMPARE_SEED, precision=0, label=i18n("common.seed"), info=i18n("compare.seed_info")
            )
        with gr.Row():
            compare_button = gr.Button(i18n("compare.button"), variant="primary", elem_id="compare")
            stop_button = gr.Button(i18n("common.stop"), variant="stop", elem_id="compare-stop")
        used_seed = gr.Markdown(elem_id="compare-seed")
        columns = gr.HTML("", js_on_load=None, elem_id="compare-columns")

    def compare_for_page(prompt, cell, temperature, max_new_chars, seed, request: gr.Request):
        language = request_language(request)
        updates = compare_stream(zoo, prompt, cell, temperature, max_new_chars, seed, worker=worker)
        try:
            for update in shown_as_gradio_errors(updates, language):
                yield server_text("compare.seed_used", language, seed=update["seed"]), columns_html(update, language)
        finally:  # Stop, cancel or disconnect: end every column's generation
            updates.close()

    comparison = compare_button.click(
        compare_for_page,
        inputs=[prompt, cell, temperature, max_new_chars, seed],
        outputs=[used_seed, columns],
        api_visibility="private",
        preprocess=False,  # compare_stream validates every value itself
        concurrency_limit=concurrency_limit,
        concurrency_id=GENERATION_CONCURRENCY_ID,
        show_progress="minimal",
    )
    stop_button.click(fn=None, cancels=[comparison], queue=False)
