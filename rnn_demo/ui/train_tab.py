"""The Train tab: train a model of your own on a text, watching its loss; then use it in the other
tabs, download it, or push it to the Hub.

The work is :class:`rnn_demo.serving.training_jobs.Trainer`'s: a run in a process of its own, one
torch thread. The page and the ``/train`` API share one Gradio concurrency limit, so a second
trainer waits in the queue and the page shows its place there.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from rnn_demo.model.checkpoint import CELLS
from rnn_demo.serving.requests import RequestError
from rnn_demo.serving.training_jobs import (
    LAYER_CHOICES,
    MIN_SECONDS,
    SHIPPED_TEXT_NAME,
    YOUR_MODEL,
    Progress,
    Trainer,
    publish_command,
    read_text_file,
    shipped_text,
    validate_training_request,
    zip_model,
)
from rnn_demo.serving.zoo import ModelZoo
from rnn_demo.ui.display import CELL_LABELS, format_count, shown_as_gradio_errors
from rnn_demo.ui.generate_tab import StopRequests, cell_choices

TRAINING_CONCURRENCY_ID = "train"  # the page's Train button and /train share the server's limit
SOURCES = {
    "shipped": "Tiny Shakespeare (the shipped text, 1.1 million characters)",
    "paste": "Paste a text",
    "upload": "Upload a .txt file",
}
DEFAULT_HIDDEN_SIZE = 128
DEFAULT_SECONDS = 60
HIDDEN_SIZE_STEP = 16


def training_text(trainer: Trainer, source: str, pasted, upload) -> tuple[str, str]:
    """(text, what it is) for the chosen source; RequestError when there is none or it is unreadable."""
    if source == "shipped":
        return shipped_text(), SHIPPED_TEXT_NAME
    if source == "upload":
        if not upload:
            raise RequestError("Choose a .txt file to upload first.")
        path = Path(upload)  # gr.File(type="filepath") hands over the uploaded copy's path
        return read_text_file(path, trainer.limits), path.name
    if source == "paste":
        return pasted if isinstance(pasted, str) else "", "pasted text"
    raise RequestError(f"Unknown text source {source!r}; choose {', '.join(SOURCES)}")


def progress_line(progress: Progress, seconds: float) -> str:
    """The line above the chart (Markdown): step, losses, speed, time left."""
    if progress.step == 0 and progress.train_loss is None:
        return f"Starting the training process… ({progress.elapsed:.0f} s)"
    parts = [f"step {progress.step:,}"]
    if progress.train_loss is not None:
        parts.append(f"train loss {progress.train_loss:.3f}")
    if progress.val_loss is not None:
        parts.append(f"validation {progress.val_loss:.3f} (best {progress.best_val_loss:.3f}) nats/char")
    if progress.chars_per_second:
        parts.append(f"{progress.chars_per_second:,.0f} chars/s")
    if progress.done:
        state = "stopped" if progress.stopped else "done"
        parts.append(f"{state} after {progress.train_seconds:.0f} s of training")
    else:
        parts.append(f"{progress.seconds_left:.0f} s of {seconds:g} s left")
    return " · ".join(parts)


def loss_frame(progress: Progress):
    """The loss curve as the chart wants it: step, loss, split."""
    import pandas as pd

    return (
        pd.DataFrame(progress.curve, columns=["step", "split", "loss"])
        if progress.curve
        else pd.DataFrame({"step": [], "split": [], "loss": []})
    )


def build_train_tab(zoo: ModelZoo, trainer: Trainer, cell_dropdowns: list[gr.Dropdown]) -> None:
    """The tab and its events, inside the caller's ``gr.Blocks``. A finished run's model becomes the
    browser session's own (``trainer.remember``), and "Your model" is added to the other tabs'
    ``cell_dropdowns`` and chosen there."""
    limits = trainer.limits
    with gr.Tab("Train"):
        gr.Markdown(
            "Train a model of your own on a text, here on the server: the loss is drawn as it learns, and "
            "the model then writes in the Generate tab. It is yours alone: it is not added to the models "
            f"of this page, and it is kept {limits.model_minutes:g} minutes after you last use it."
        )
        with gr.Row():
            with gr.Column(scale=2):
                source = gr.Radio(
                    [(label, key) for key, label in SOURCES.items()],
                    value="shipped",
                    label="Text",
                    elem_id="train-source",
                )
                pasted = gr.Textbox(
                    label=f"Your text (at least {limits.min_chars:,} characters)",
                    lines=6,
                    max_lines=12,
                    visible=False,
                    placeholder="Paste any text, in any language",
                    elem_id="train-text",
                )
                upload = gr.File(
                    label=f"A UTF-8 .txt file (up to {limits.max_text_mb:g} MB)",
                    file_types=[".txt"],
                    type="filepath",
                    visible=False,
                    elem_id="train-upload",
                )
                with gr.Row():
                    cell = gr.Dropdown(
                        [(CELL_LABELS[c], c) for c in CELLS], value="lstm", label="Cell type", elem_id="train-cell"
                    )
                    layers = gr.Radio(list(LAYER_CHOICES), value=1, label="Layers", elem_id="train-layers")
                hidden_size = gr.Slider(
                    HIDDEN_SIZE_STEP,
                    limits.max_hidden_size,
                    value=min(DEFAULT_HIDDEN_SIZE, limits.max_hidden_size),
                    step=HIDDEN_SIZE_STEP,
                    precision=0,
                    label="Hidden size",
                    elem_id="train-hidden-size",
                )
                seconds = gr.Slider(
                    MIN_SECONDS,
                    limits.max_seconds,
                    value=min(DEFAULT_SECONDS, limits.max_seconds),
                    step=5,
                    label="Training time (seconds)",
                    info="evaluation time comes on top; the model is measured every few hundred steps",
                    elem_id="train-seconds",
                )
                with gr.Row():
                    train_button = gr.Button("Train", variant="primary", elem_id="train")
                    stop_button = gr.Button("Stop", variant="stop", elem_id="train-stop")
            with gr.Column(scale=3):
                status = gr.Markdown(elem_id="train-status")
                chart = gr.LinePlot(
                    loss_frame(Progress()),
                    x="step",
                    y="loss",
                    color="split",
                    title="Loss (nats per character)",
                    y_title="loss (nats/char)",
                    elem_id="train-chart",
                )
                download = gr.File(
                    label="Your model (a save_pretrained folder, zipped)", visible=False, elem_id="train-download"
                )
                share = gr.Markdown(elem_id="train-share")

    source.change(
        lambda chosen: (gr.update(visible=chosen == "paste"), gr.update(visible=chosen == "upload")),
        inputs=source,
        outputs=[pasted, upload],
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    )

    stops = StopRequests()

    def train_for_page(source, pasted, upload, cell, hidden_size, layers, seconds, request: gr.Request):
        flag = stops.start(request.session_hash)
        try:
            text, name = training_text(trainer, source, pasted, upload)
            job = validate_training_request(limits, text, cell, hidden_size, layers, seconds, source=name)
        except RequestError as error:
            stops.finish(request.session_hash, flag)
            raise gr.Error(str(error)) from None
        updates = trainer.train(job, should_stop=flag.is_set)
        unchanged = [gr.skip()] * len(cell_dropdowns)
        yield (
            "Starting the training process…",
            loss_frame(Progress()),
            gr.update(visible=False, value=None),
            "",
            *unchanged,
        )
        try:
            for progress in shown_as_gradio_errors(updates):
                line = progress_line(progress, job.seconds)
                if not progress.done:
                    yield line, loss_frame(progress), gr.skip(), gr.skip(), *unchanged
                    continue
                entry = trainer.models.get(progress.model_id)
                score = f"validation {entry.info.val_bpc:.3f} bits/char" if entry.info.val_bpc is not None else ""
                share_text = (
                    f"**{entry.info.name}** ({entry.info.num_layers}×{entry.info.hidden_size} "
                    f"{CELL_LABELS[entry.info.cell]}, {format_count(entry.info.params)} parameters"
                    + (f", {score}" if score else "")
                    + ", trained on "
                    + entry.source
                    + ") is ready: the Generate and Inside-the-network tabs now use it (their cell type: **Your model**).\n\n"
                    'Download it above and unzip it: `CharRNN.from_pretrained("' + entry.info.path.name + '")` '
                    "loads it, and this pushes it to the Hugging Face Hub:\n\n"
                    f"```bash\n{publish_command(entry)}\n```"
                )
                trainer.remember(request.session_hash, entry.model_id)
                # One update per dropdown: gradio consumes an update's dict as it applies it.
                yours = [gr.update(choices=cell_choices(zoo, entry), value=YOUR_MODEL) for _ in cell_dropdowns]
                download_file = gr.update(visible=True, value=str(zip_model(entry)))
                yield (
                    line,
                    loss_frame(progress),
                    download_file,
                    share_text,
                    *yours,
                )
        finally:  # also when gradio closes this generator (a disconnect): the run ends with it
            updates.close()
            stops.finish(request.session_hash, flag)

    train_button.click(
        train_for_page,
        inputs=[source, pasted, upload, cell, hidden_size, layers, seconds],
        outputs=[status, chart, download, share, *cell_dropdowns],
        api_visibility="private",
        concurrency_limit=limits.concurrency,
        concurrency_id=TRAINING_CONCURRENCY_ID,
        show_progress="minimal",
    )

    def request_stop(request: gr.Request) -> None:
        stops.request(request.session_hash)

    stop_button.click(request_stop, api_visibility="private", queue=False)
