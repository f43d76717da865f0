"""The Models tab: every model the demo serves, with its size, scores and training."""

from __future__ import annotations

import gradio as gr

from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import CELL_LABELS


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


def build_models_tab(zoo: ModelZoo) -> None:
    """The tab's content, inside the caller's ``gr.Blocks``."""
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
        problems = zoo.problems()
        if problems and zoo.cells():
            gr.Markdown("Skipped:\n" + "\n".join(f"- {problem}" for problem in problems))
