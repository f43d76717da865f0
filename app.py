"""The Gradio demo: continue a prompt with a character-level RNN, GRU or LSTM, streaming.

Run it with ``python app.py`` (http://127.0.0.1:7860). The models come from the folder
``models/`` next to this file, or from $RNN_DEMO_MODELS (a folder or a Hub repo id); see
:mod:`rnn_demo.serving.zoo`. The same file is the entry point of the Hugging Face Space.

This file wires the page: the tabs are in :mod:`rnn_demo.ui`, the public API in
:mod:`rnn_demo.ui.api`, validation, caps and the server's lifecycle in :mod:`rnn_demo.serving`.

Public API (fixed names; clients depend on them):
    /generate(prompt, cell, hidden_size, temperature, max_new_chars, top_k, top_p, seed)
        streams the text shown in the UI: the prompt followed by the continuation so far.
    /models() -> the model table as a list of JSON objects.
    /explain(text, cell, hidden_size, top_k) -> what the model expected at each character.
    /score(text) -> the text's bits/char under every model.
    /neurons(text, cell, hidden_size, layer) -> one layer's state after each character.
    /compare(prompt, cell, temperature, max_new_chars, seed) streams every hidden size's continuation.
    /train(text, cell, hidden_size, seconds, num_layers) streams a training's progress, last its model_id.
    /generate_trained(model_id, prompt, temperature, max_new_chars, top_k, top_p, seed) streams like /generate.
    /poem(form, acrostic, first_line, rhyme, tones, temperature, seed, mood) streams a Tang poem.
    /check_poem(poem) -> any poem's tones, rhymes and the poem model's probabilities.
Every other event is private. The same endpoints are MCP tools (streamable HTTP at /gradio_api/mcp/).
"""

import argparse
import os
from pathlib import Path

import gradio as gr

# Nothing imported here imports torch (seconds to import on a small CPU), and generation never does:
# only the views inside the network and training need it (``python -m benchmarks.startup``).
from rnn_demo.serving.allocator import limit_malloc_arenas
from rnn_demo.serving.lifecycle import (
    ANALYTICS_SUMMARY_EVERY,
    CACHE_CHECK_SECONDS,
    CACHE_SECONDS,
    CONCURRENCY_LIMIT,
    MALLOC_ARENAS,
    MAX_QUEUE_SIZE,
    PENDING_PER_VISITOR,
    STATE_SESSION_CAPACITY,
    UPLOADS_IN_ALL,
    UPLOADS_PER_VISITOR,
    end_on_signals,
    warm_up,
)
from rnn_demo.serving.training_jobs import Trainer, TrainingLimits
from rnn_demo.serving.unread_answers import dropping_unread_answers
from rnn_demo.serving.visitor_caps import PendingCap, UploadCap
from rnn_demo.serving.worker import GenerationWorker
from rnn_demo.serving.zoo import MODELS_ENV, ModelZoo
from rnn_demo.ui.about_tab import build_about_tab
from rnn_demo.ui.api import register_api
from rnn_demo.ui.compare_tab import build_compare_tab
from rnn_demo.ui.display import CELL_LABELS
from rnn_demo.ui.generate_tab import build_generate_tab
from rnn_demo.ui.i18n import LANGUAGES, PAGE_LANGUAGE_JS, i18n, page_text, server_text
from rnn_demo.ui.inside_tab import build_inside_tab
from rnn_demo.ui.models_tab import build_models_tab
from rnn_demo.ui.poems_tab import build_poems_tab
from rnn_demo.ui.train_tab import build_train_tab

DEFAULT_MODELS_DIR = Path(__file__).resolve().parent / "models"


def build_demo(
    zoo: ModelZoo,
    worker: GenerationWorker | None = None,
    concurrency_limit: int = CONCURRENCY_LIMIT,
    max_queue_size: int = MAX_QUEUE_SIZE,
    trainer: Trainer | None = None,
    poem_zoo: ModelZoo | None = None,
) -> gr.Blocks:
    """The whole UI for one zoo; nothing is loaded until the first request.

    Every generation (page and API) goes through ``worker`` (by default a new one), which steps the
    concurrent generations together. ``concurrency_limit`` generations run at once
    and at most ``max_queue_size`` wait; a request beyond that is refused at once with Gradio's
    "Queue is full" error. Both are set by the server (tests use small ones); no request can
    change them. ``trainer`` (by default a new one, with the limits of the environment) runs the
    Train tab's and /train's trainings and keeps the models they leave. ``poem_zoo`` (by default the
    poem models of ``zoo``'s source) writes /poem's Tang poems.
    """
    trainer = trainer or Trainer()
    worker = worker or GenerationWorker()
    poem_zoo = poem_zoo or ModelZoo(zoo.source, poems=True)
    cells = zoo.cells()
    problems = zoo.problems()

    with gr.Blocks(title="Character-level RNN demo", delete_cache=(CACHE_CHECK_SECONDS, CACHE_SECONDS)) as demo:
        gr.Markdown(page_text("page.header", title=cell_names(cells)))
        if not cells:
            listed = "\n".join(f"- {problem}" for problem in problems)
            gr.Markdown(page_text("page.no_models", problems=listed, variable=MODELS_ENV))
        generate_cell = build_generate_tab(zoo, worker, concurrency_limit, trainer)
        inside_cell = build_inside_tab(zoo, worker, concurrency_limit, trainer, poem_zoo)
        build_compare_tab(zoo, worker, concurrency_limit)
        build_poems_tab(poem_zoo, worker, concurrency_limit)
        build_train_tab(
            zoo, trainer, cell_dropdowns=[generate_cell, inside_cell], poem_choice={inside_cell.elem_id: poem_zoo}
        )
        build_models_tab(zoo, poem_zoo)
        build_about_tab()
        register_api(zoo, worker, concurrency_limit, trainer, poem_zoo)

    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(ANALYTICS_SUMMARY_EVERY))  # read by the queue
    demo.queue(max_size=max_queue_size, default_concurrency_limit=concurrency_limit)
    return demo


def cell_names(cells: list[str]) -> dict[str, str]:
    """The title's "RNN, GRU and LSTM" in each language (page_text fills one template per language)."""
    names = [CELL_LABELS[c].split(" ")[0] for c in cells] or ["RNN"]
    joined = {}
    for language in LANGUAGES:
        separator, last = server_text("page.list_separator", language), server_text("page.and", language)
        joined[language] = names[0] if len(names) == 1 else separator.join(names[:-1]) + last + names[-1]
    return joined


def launch_options(limits: TrainingLimits | None = None, **options) -> dict:
    """The keyword arguments of every ``demo.launch`` (main(), the tests, the Space): the page's
    translations (``i18n``) and the script that tells the server the page's language (``js``), the
    server's session capacity, the caps per visitor on requests pending and on uploads (the only
    upload is the Train tab's text: its size from ``limits``, by default the environment's, and their
    number, per visitor and in all), the dropping of answers nobody reads, plus the caller's
    ``options``."""
    from starlette.middleware import Middleware

    limits = limits or TrainingLimits.from_environment()
    pending = Middleware(PendingCap, per_visitor=PENDING_PER_VISITOR)
    uploads = Middleware(UploadCap, per_visitor=UPLOADS_PER_VISITOR, in_all=UPLOADS_IN_ALL, window=CACHE_SECONDS)
    return {
        "i18n": i18n,
        "js": PAGE_LANGUAGE_JS,
        "state_session_capacity": STATE_SESSION_CAPACITY,
        "max_file_size": limits.max_text_bytes,
        "app_kwargs": {"middleware": [pending, uploads], "lifespan": dropping_unread_answers},
        **options,
    }


ZOO = ModelZoo.from_environment(DEFAULT_MODELS_DIR)
POEM_ZOO = ModelZoo.from_environment(DEFAULT_MODELS_DIR, poems=True)
WORKER = GenerationWorker()
TRAINER = Trainer()
demo = build_demo(ZOO, WORKER, trainer=TRAINER, poem_zoo=POEM_ZOO)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the character-level RNN demo.")
    parser.add_argument("--host", default=None, help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    end_on_signals(first=TRAINER.close)  # Ctrl-C and SIGTERM: the trainings end, then the server
    limit_malloc_arenas(MALLOC_ARENAS)  # before gradio starts its threads
    demo.launch(
        **launch_options(
            server_name=args.host,
            server_port=args.port,
            prevent_thread_lock=True,
            limits=TRAINER.limits,
            mcp_server=True,  # the public endpoints as tools for language-model agents (/gradio_api/mcp/)
        )
    )
    warm_up(ZOO)  # the default model's engine weights, read while the page is already served
    demo.block_thread()


if __name__ == "__main__":
    main()
