"""The Models tab: every model the demo serves, with its size, scores and training, and a plot of
validation bits per character against size."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from rnn_demo.model.checkpoint import CELLS
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import CELL_LABELS
from rnn_demo.ui.i18n import i18n, page_text


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
            "cell": pd.Series([CELL_LABELS[info.cell] for info in scored], dtype="str"),
            "model": pd.Series([info.name for info in scored], dtype="str"),
            "hidden size": pd.Series([info.hidden_size for info in scored], dtype="int64"),
            "parameters": pd.Series([info.params for info in scored], dtype="int64"),
            "val bits/char": pd.Series([round(info.val_bpc, 3) for info in scored], dtype="float64"),
        },
        columns=PLOT_COLUMNS,
    )


def build_models_tab(zoo: ModelZoo) -> None:
    """The tab's content, inside the caller's ``gr.Blocks``."""
    with gr.Tab(i18n("models.tab")):
        gr.Markdown(i18n("models.intro"))
        gr.Dataframe(
            value=model_table_rows(zoo),
            headers=MODEL_TABLE_HEADERS,
            interactive=False,
            datatype=["str", "number", "number", "number", "number", "number", "number", "number", "str"],
        )
        plot_data = bits_per_char_plot_data(zoo)
        if len(plot_data):
            # gr.LinePlot has no log scale; an SI-formatted linear axis (25k, 500k, 1M) reads well enough.
            gr.LinePlot(
                plot_data,
                x="parameters",
                y="val bits/char",
                color="cell",
                title=i18n("models.plot_title"),
                x_title="parameters",
                y_title="validation bits/char",
                color_title="cell",
                x_axis_format="~s",
                tooltip="all",
                label=i18n("models.plot_label"),
                show_label=False,
            )
        problems = zoo.problems()
        if problems and zoo.cells():
            gr.Markdown(page_text("models.skipped", problems="\n".join(f"- {problem}" for problem in problems)))
