"""The Train tab: train a model of your own on a text, watching its loss; then use it in the other
tabs, download it, or push it to the Hub.

The work is :class:`rnn_demo.serving.training_jobs.Trainer`'s: a run in a process of its own, one
torch thread. The page and the ``/train`` API share the trainer's line
(:mod:`rnn_demo.serving.training_line`): a second training waits there, and the page shows its place.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from rnn_demo.model.checkpoint import CELLS
from rnn_demo.serving.clients import Client
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
from rnn_demo.ui.display import cell_label, format_count, shown_as_gradio_errors
from rnn_demo.ui.generate_tab import StopRequests, cell_choices
from rnn_demo.ui.i18n import CHINESE, ENGLISH, add_texts, error_text, i18n, page_text, request_language, server_text

SOURCES = ("shipped", "paste", "upload")  # the text's source; the page's labels are "train.source_<key>"
PASTED_TEXT_NAME = "pasted text"
# How the page names a text in a finished model's description (an uploaded file by its own name).
TEXT_NAME_KEYS = {SHIPPED_TEXT_NAME: "train.name_shipped", PASTED_TEXT_NAME: "train.name_pasted"}
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
        return pasted if isinstance(pasted, str) else "", PASTED_TEXT_NAME
    raise RequestError("Unknown text source {source!r}; choose {sources}", source=source, sources=", ".join(SOURCES))


def progress_line(progress: Progress, seconds: float, language: str = ENGLISH) -> str:
    """The line above the chart (Markdown, in ``language``): step, losses, speed, time left."""
    if progress.waiting:
        return server_text("train.waiting", language, place=progress.waiting, seconds=progress.starts_in)
    if progress.step == 0 and progress.train_loss is None:
        return server_text("train.starting", language, seconds=progress.elapsed)
    parts = [server_text("train.step", language, step=progress.step)]
    if progress.train_loss is not None:
        parts.append(server_text("train.train_loss", language, loss=progress.train_loss))
    if progress.val_loss is not None:
        parts.append(server_text("train.val_loss", language, loss=progress.val_loss, best=progress.best_val_loss))
    if progress.chars_per_second:
        parts.append(server_text("train.speed", language, speed=progress.chars_per_second))
    if progress.done:
        key = "train.stopped_after" if progress.stopped else "train.done_after"
        parts.append(server_text(key, language, seconds=progress.elapsed))
    else:
        parts.append(server_text("train.left", language, left=progress.seconds_left, seconds=seconds))
    return " · ".join(parts)


def ready_text(entry, language: str = ENGLISH) -> str:
    """What the page says of a finished model (Markdown, in ``language``): what it is, where it is used
    now, how to load it and the command that pushes it to the Hub."""
    info = entry.info
    score = server_text("train.score", language, bpc=info.val_bpc) if info.val_bpc is not None else ""
    return server_text(
        "train.ready",
        language,
        name=info.name,
        shape=f"{info.num_layers}×{info.hidden_size} {cell_label(info.cell, language)}",
        params=format_count(info.params),
        score=score,
        source=server_text(TEXT_NAME_KEYS[entry.source], language) if entry.source in TEXT_NAME_KEYS else entry.source,
        folder=info.path.name,
        command=publish_command(entry),
    )


def loss_frame(progress: Progress, language: str = ENGLISH):
    """The loss curve as the chart wants it: step, loss, split (the split named in ``language``)."""
    import pandas as pd

    names = {split: server_text(f"train.split_{split}", language) for split in ("train", "validation")}
    frame = pd.DataFrame(
        [(step, names[split], loss) for step, split, loss in progress.curve], columns=["step", "split", "loss"]
    )
    # The same column types when there are no points yet: an empty column is numbers to pandas, and
    # the chart colours a numeric "split" on a scale whose empty legend reads -Infinity to Infinity.
    return frame.astype({"step": "int64", "split": "str", "loss": "float64"})


def build_train_tab(
    zoo: ModelZoo, trainer: Trainer, cell_dropdowns: list[gr.Dropdown], poem_choice: dict | None = None
) -> None:
    """The tab and its events, inside the caller's ``gr.Blocks``. A finished run's model becomes the
    browser session's own (``trainer.remember``), and "Your model" is added to the other tabs'
    ``cell_dropdowns`` and chosen there; the poem model stays a choice of the dropdowns that
    ``poem_choice`` maps to the poem zoo ({dropdown's elem_id: zoo})."""
    poem_choice = poem_choice or {}
    limits = trainer.limits
    with gr.Tab(i18n("train.tab")):
        gr.Markdown(page_text("train.intro", minutes=f"{limits.model_minutes:g}"))
        with gr.Row():
            with gr.Column(scale=2):
                source = gr.Radio(
                    [(i18n(f"train.source_{key}"), key) for key in SOURCES],
                    value="shipped",
                    label=i18n("train.source"),
                    elem_id="train-source",
                )
                pasted = gr.Textbox(
                    label=page_text("train.pasted", chars=f"{limits.min_chars:,}"),
                    lines=6,
                    max_lines=12,
                    visible=False,
                    placeholder=i18n("train.pasted_placeholder"),
                    elem_id="train-text",
                )
                upload = gr.File(
                    label=page_text("train.upload", mb=f"{limits.max_text_mb:g}"),
                    file_types=[".txt"],
                    type="filepath",
                    visible=False,
                    elem_id="train-upload",
                )
                with gr.Row():
                    cell = gr.Dropdown(
                        [(cell_label(c), c) for c in CELLS],
                        value="lstm",
                        label=i18n("common.cell_type"),
                        elem_id="train-cell",
                    )
                    layers = gr.Radio(list(LAYER_CHOICES), value=1, label=i18n("train.layers"), elem_id="train-layers")
                hidden_size = gr.Slider(
                    HIDDEN_SIZE_STEP,
                    limits.max_hidden_size,
                    value=min(DEFAULT_HIDDEN_SIZE, limits.max_hidden_size),
                    step=HIDDEN_SIZE_STEP,
                    precision=0,
                    label=i18n("common.hidden_size"),
                    elem_id="train-hidden-size",
                )
                seconds = gr.Slider(
                    MIN_SECONDS,
                    limits.max_seconds,
                    value=min(DEFAULT_SECONDS, limits.max_seconds),
                    step=5,
                    label=i18n("train.seconds"),
                    info=i18n("train.seconds_info"),
                    elem_id="train-seconds",
                )
                with gr.Row():
                    train_button = gr.Button(i18n("train.button"), variant="primary", elem_id="train")
                    stop_button = gr.Button(i18n("common.stop"), variant="stop", elem_id="train-stop")
            with gr.Column(scale=3):
                status = gr.Markdown(elem_id="train-status")
                chart = gr.LinePlot(
                    loss_frame(Progress()),
                    x="step",
                    y="loss",
                    color="split",
                    title=i18n("train.chart_title"),
                    x_title=i18n("train.chart_step"),
                    y_title=i18n("train.chart_loss"),
                    color_title=i18n("train.chart_split"),
                    elem_id="train-chart",
                )
                download = gr.File(label=i18n("train.download"), visible=False, elem_id="train-download")
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
        language = request_language(request)
        try:
            text, name = training_text(trainer, source, pasted, upload)
            job = validate_training_request(limits, text, cell, hidden_size, layers, seconds, source=name)
        except RequestError as error:
            stops.finish(request.session_hash, flag)
            raise gr.Error(error_text(error, language)) from None
        updates = trainer.train(job, should_stop=flag.is_set, client=Client.of(request))
        unchanged = [gr.skip()] * len(cell_dropdowns)
        yield (
            progress_line(Progress(), job.seconds, language),
            loss_frame(Progress(), language),
            gr.update(visible=False, value=None),
            "",
            *unchanged,
        )
        try:
            for progress in shown_as_gradio_errors(updates, language):
                line = progress_line(progress, job.seconds, language)
                if not progress.done:
                    yield line, loss_frame(progress, language), gr.skip(), gr.skip(), *unchanged
                    continue
                entry = trainer.models.get(progress.model_id)
                share_text = ready_text(entry, language)
                trainer.remember(request.session_hash, entry.model_id)
                # One update per dropdown: gradio consumes an update's dict as it applies it.
                yours = [
                    gr.update(
                        choices=cell_choices(zoo, entry, language, poems=poem_choice.get(dropdown.elem_id)),
                        value=YOUR_MODEL,
                    )
                    for dropdown in cell_dropdowns
                ]
                download_file = gr.update(visible=True, value=str(zip_model(entry)))
                yield (
                    line,
                    loss_frame(progress, language),
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
        concurrency_limit=None,  # it waits in the trainer's line, not in the queue (see api.py's /train)
        show_progress="minimal",
    )

    def request_stop(request: gr.Request) -> None:
        stops.request(request.session_hash)

    stop_button.click(request_stop, api_visibility="private", queue=False)


add_texts(
    {
        "train.tab": {ENGLISH: "Train", CHINESE: "训练"},
        "train.intro": {
            ENGLISH: "Train a model of your own on a text, here on the server: the loss is drawn as it learns, "
            "and the model then writes in the Generate tab and reads in Inside the network. It is yours alone: "
            "it is not added to the models of this page, and it is kept {minutes} minutes after you last use it.",
            CHINESE: "在服务器上用一段文本训练一个属于你自己的模型：学习过程中实时画出损失曲线，训练好的模型随后可以在"
            "“生成”页写作、在“网络内部”页阅读。它只属于你：不会加入本页的公共模型，最后一次使用后保留 {minutes} 分钟。",
        },
        "train.source": {ENGLISH: "Text", CHINESE: "训练文本"},
        "train.source_shipped": {
            ENGLISH: "Tiny Shakespeare (the shipped text, 1.1 million characters)",
            CHINESE: "莎士比亚小语料（随附的文本，110 万个字符）",
        },
        "train.name_shipped": {ENGLISH: "tiny shakespeare", CHINESE: "莎士比亚小语料"},
        "train.name_pasted": {ENGLISH: "a pasted text", CHINESE: "粘贴的文本"},
        "train.source_paste": {ENGLISH: "Paste a text", CHINESE: "粘贴文本"},
        "train.source_upload": {ENGLISH: "Upload a .txt file", CHINESE: "上传 .txt 文件"},
        "train.chart_title": {ENGLISH: "Loss (nats per character)", CHINESE: "损失（奈特/字符）"},
        "train.chart_step": {ENGLISH: "step", CHINESE: "步数"},
        "train.chart_loss": {ENGLISH: "loss (nats/char)", CHINESE: "损失（奈特/字符）"},
        "train.chart_split": {ENGLISH: "split", CHINESE: "数据"},
        "train.split_train": {ENGLISH: "train", CHINESE: "训练集"},
        "train.split_validation": {ENGLISH: "validation", CHINESE: "验证集"},
        "train.pasted": {
            ENGLISH: "Your text (at least {chars} characters)",
            CHINESE: "你的文本（至少 {chars} 个字符）",
        },
        "train.pasted_placeholder": {ENGLISH: "Paste any text, in any language", CHINESE: "粘贴任意语言的文本"},
        "train.upload": {
            ENGLISH: "A UTF-8 .txt file (up to {mb} MB)",
            CHINESE: "UTF-8 编码的 .txt 文件（不超过 {mb} MB）",
        },
        "train.layers": {ENGLISH: "Layers", CHINESE: "层数"},
        "train.seconds": {ENGLISH: "Training time (seconds)", CHINESE: "训练时间（秒）"},
        "train.seconds_info": {
            ENGLISH: "wall time, the model's evaluations (every 100 steps) included",
            CHINESE: "总用时，包括模型评估（每 100 步一次）",
        },
        "train.button": {ENGLISH: "Train", CHINESE: "开始训练"},
        "train.download": {
            ENGLISH: "Your model (a save_pretrained folder, zipped)",
            CHINESE: "你的模型（save_pretrained 文件夹的 zip 压缩包）",
        },
        "train.waiting": {
            ENGLISH: "Waiting for your turn: number {place} in line, starting in about {seconds:.0f} s. Stop leaves the line.",
            CHINESE: "排队等候：你排第 {place} 位，大约 {seconds:.0f} 秒后开始。按“停止”可退出排队。",
        },
        "train.starting": {
            ENGLISH: "Starting the training process… ({seconds:.0f} s)",
            CHINESE: "正在启动训练进程…（{seconds:.0f} 秒）",
        },
        "train.step": {ENGLISH: "step {step:,}", CHINESE: "第 {step:,} 步"},
        "train.train_loss": {ENGLISH: "train loss {loss:.3f}", CHINESE: "训练损失 {loss:.3f}"},
        "train.val_loss": {
            ENGLISH: "validation {loss:.3f} (best {best:.3f}) nats/char",
            CHINESE: "验证损失 {loss:.3f}（最佳 {best:.3f}）奈特/字符",
        },
        "train.speed": {ENGLISH: "{speed:,.0f} chars/s", CHINESE: "{speed:,.0f} 字符/秒"},
        "train.left": {
            ENGLISH: "{left:.0f} s of {seconds:g} s left",
            CHINESE: "剩余 {left:.0f} 秒（共 {seconds:g} 秒）",
        },
        "train.done_after": {
            ENGLISH: "done after {seconds:.0f} s",
            CHINESE: "完成，用时 {seconds:.0f} 秒",
        },
        "train.stopped_after": {
            ENGLISH: "stopped after {seconds:.0f} s",
            CHINESE: "已停止，用时 {seconds:.0f} 秒",
        },
        "train.score": {ENGLISH: ", validation {bpc:.3f} bits/char", CHINESE: "，验证集 {bpc:.3f} 比特/字符"},
        "train.ready": {
            ENGLISH: "**{name}** ({shape}, {params} parameters{score}, trained on {source}) is ready: the Generate "
            "and Inside-the-network tabs now use it (their cell type: **Your model**).\n\n"
            'Download it above and unzip it: `CharRNN.from_pretrained("{folder}")` loads it, and this pushes it '
            "to the Hugging Face Hub:\n\n```bash\n{command}\n```",
            CHINESE: "**{name}**（{shape}，{params} 个参数{score}，训练文本：{source}）已训练好：“生成”页和“网络内部”页"
            "现在使用它（单元类型：**你的模型**）。\n\n"
            '从上方下载并解压：`CharRNN.from_pretrained("{folder}")` 即可加载；下面的命令把它推送到 Hugging Face Hub：'
            "\n\n```bash\n{command}\n```",
        },
        "train.your_model": {ENGLISH: "Your model ({name})", CHINESE: "你的模型（{name}）"},
    }
)
