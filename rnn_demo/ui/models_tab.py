"""The Models tab: every model the demo serves (the Tang poem model too), with its size, scores and
training, and a plot of validation bits per character against size for the tiny Shakespeare models.

The table is Markdown built in each language when the page is built (``page_text``): the browser
translates a Markdown block, not a Dataframe's headers."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from rnn_demo.model.checkpoint import CELLS
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import cell_label
from rnn_demo.ui.i18n import ENGLISH, LANGUAGES, i18n, page_text, server_text


def model_table_rows(zoo: ModelZoo, language: str = ENGLISH, poems: bool = False) -> list[list]:
    """The Models tab: one row per model, its cell named in ``language`` (``poems``: the zoo's models
    are poem models)."""

    def optional(value, digits):
        return round(value, digits) if value is not None else None

    return [
        [
            cell_label("tang" if poems else info.cell, language),
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


MODEL_TABLE_COLUMNS = ["cell", "hidden_size", "layers", "parameters", "val", "test", "minutes", "size", "trained_on"]


def model_table_markdown(zoo: ModelZoo, poem_zoo: ModelZoo | None, language: str = ENGLISH) -> str:
    """The table of every model of ``zoo`` and ``poem_zoo`` as Markdown, in ``language``."""
    rows = model_table_rows(zoo, language) + (model_table_rows(poem_zoo, language, poems=True) if poem_zoo else [])
    headers = [server_text(f"models.column_{column}", language) for column in MODEL_TABLE_COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 2) + "---|"]
    for row in rows:
        cells = ["—" if value is None else f"{value:,}" if isinstance(value, int) else str(value) for value in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


PLOT_COLUMNS = ["cell", "model", "hidden size", "parameters", "val bits/char"]


def bits_per_char_plot_data(zoo: ModelZoo) -> pd.DataFrame:
    """The plot's data: one row per model with a validation score (models without one are left out),
    ordered by cell (rnn, gru, lstm) and then parameters, with the columns of ``PLOT_COLUMNS``."""
    order = {cell: index for index, cell in enumerate(CELLS)}
    scored = sorted(
        (info for info in zoo.models() if info.val_bpc is not None),
        key=lambda info: (order[info.cell], info.params),
    )
    return pd.DataFrame(
        {
            "cell": pd.Series([info.cell.upper() for info in scored], dtype="str"),  # RNN, GRU, LSTM in any language
            "model": pd.Series([info.name for info in scored], dtype="str"),
            "hidden size": pd.Series([info.hidden_size for info in scored], dtype="int64"),
            "parameters": pd.Series([info.params for info in scored], dtype="int64"),
            "val bits/char": pd.Series([round(info.val_bpc, 3) for info in scored], dtype="float64"),
        },
        columns=PLOT_COLUMNS,
    )


def build_models_tab(zoo: ModelZoo, poem_zoo: ModelZoo | None = None) -> None:
    """The tab's content, inside the caller's ``gr.Blocks``."""
    with gr.Tab(i18n("models.tab")):
        gr.Markdown(i18n("models.intro"))
        tables = {language: model_table_markdown(zoo, poem_zoo, language) for language in LANGUAGES}
        gr.Markdown(page_text("models.table", table=tables), elem_id="models-table")
        plot_data = bits_per_char_plot_data(zoo)
        if len(plot_data):
            # gr.LinePlot has no log scale; an SI-formatted linear axis (25k, 500k, 1M) reads well enough.
            gr.LinePlot(
                plot_data,
                x="parameters",
                y="val bits/char",
                color="cell",
                title=i18n("models.plot_title"),
                x_title=i18n("models.plot_parameters"),
                y_title=i18n("models.plot_bits"),
                color_title=i18n("models.plot_cell"),
                x_axis_format="~s",
                tooltip="all",
                label=i18n("models.plot_label"),
                show_label=False,
            )
        problems = zoo.problems()
        if problems and zoo.cells():
            gr.Markdown(page_text("models.skipped", problems="\n".join(f"- {problem}" for problem in problems)))
