"""How long the views inside a model take on each shipped model: ``python -m benchmarks.views``.

    python -m benchmarks.views             # the first 2,000 characters of the validation split
    python -m benchmarks.views --quick     # a smoke run (fewer characters and repeats)

Columns: ``explain`` (:func:`rnn_demo.analysis.explain` with ``top_k=5``: every character's
probability, surprise and top 5 alternatives), ``score`` (:func:`rnn_demo.analysis.score`: the
bits/char alone, the same forward pass without the per-character entries) and ``neurons``
(:func:`rnn_demo.analysis.neurons` of the top layer: its h, and c for an LSTM, after every
character, as lists), each the median of several calls after one warm-up call. The text is the
start of tiny shakespeare's validation split (``data/tinyshakespeare.txt``, split as training
splits it). The target: explain within 0.5 s for 2,000 characters on every shipped model (the
last column, scaled to 2,000 characters when ``--chars`` is another length).

A second table (not with ``--quick`` or ``--no-api``) starts ``python app.py`` on loopback and
times ``/explain`` per model and ``/score`` through ``gradio_client``: what a caller waits for.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks import PROJECT_ROOT, SHIPPED_TEXT, median_seconds, text_model_folders
from rnn_demo.analysis import explain, neurons, score
from rnn_demo.cli.arguments import existing_folder, whole_number
from rnn_demo.model import CharRNN
from rnn_demo.training.data import load_text_splits

MODELS_DIR = PROJECT_ROOT / "models"
TOP_K = 5
TARGET_SECONDS = 0.5  # explain, for TARGET_CHARS characters
TARGET_CHARS = 2000
WARM_UP_SECONDS = 15  # python app.py's warm-up, after its first answer (benchmarks.startup measures it)


def model_folders(models_dir: Path) -> list[Path]:
    """The model folders of ``models_dir``, by cell then hidden size (as the README's table)."""
    configs = {
        folder: json.loads((folder / "config.json").read_text(encoding="utf-8"))
        for folder in text_model_folders(models_dir)
    }
    return sorted(configs, key=lambda folder: (configs[folder]["cell"], configs[folder]["hidden_size"], folder.name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models-dir", type=existing_folder, default=str(MODELS_DIR), help="folder of <cell>-h<size>/ model folders"
    )
    parser.add_argument(
        "--chars",
        type=whole_number(2, 55_770),
        default=None,
        help="characters of text (default 2,000; 200 with --quick)",
    )
    parser.add_argument(
        "--repeats", type=whole_number(1, 100), default=None, help="timed calls (default 7; 2 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer characters and repeats, for a smoke test")
    parser.add_argument(
        "--no-api", action="store_true", help="skip the second table (the endpoints of python app.py; off with --quick)"
    )
    args = parser.parse_args(argv)
    chars = args.chars or (200 if args.quick else TARGET_CHARS)
    repeats = args.repeats or (2 if args.quick else 7)

    text = load_text_splits(str(SHIPPED_TEXT)).validation[:chars]
    folders = model_folders(args.models_dir)
    print(
        f"text: the first {len(text):,} characters of the validation split; torch threads: {torch.get_num_threads()}; "
        f"median of {repeats} calls after one warm-up; target: explain within {TARGET_SECONDS} s per "
        f"{TARGET_CHARS:,} characters"
    )
    size = f"{len(text):,} chars"
    print(
        f"| model | parameters | explain {size} (s) | score {size} (s) | neurons {size}, top layer (s) "
        f"| explain / score | explain within {TARGET_SECONDS} s per {TARGET_CHARS:,} chars |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for folder in folders:
        model = CharRNN.from_pretrained(folder)
        top_layer = model.num_layers - 1
        explaining = median_seconds(lambda model=model: explain(model, text, top_k=TOP_K), repeats)
        scoring = median_seconds(lambda model=model: score(model, text), repeats)
        states = median_seconds(lambda model=model, layer=top_layer: neurons(model, text, layer), repeats)
        within = explaining * TARGET_CHARS / len(text) <= TARGET_SECONDS
        print(
            f"| {folder.name} | {model.num_parameters():,} | {explaining:.3f} | {scoring:.3f} | {states:.3f} "
            f"| {explaining / scoring:.1f}x | {'yes' if within else 'NO'} |"
        )
    if not (args.quick or args.no_api):
        print_api_table(args.models_dir, folders, text, repeats)
    return 0


def print_api_table(models_dir: Path, folders: list[Path], text: str, repeats: int) -> None:
    """The same text through ``python app.py``'s /explain (each model) and /score (all models at
    once), timed by a gradio_client on loopback: what a caller waits for, JSON included."""
    from gradio_client import Client

    from benchmarks.server import free_port, start_app

    port = free_port()
    server = start_app(port, models_dir, one_thread=False)  # as a user starts it
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
        # The app warms up after its page answers (loads the models, starts the generation
        # engine); time the views after that, as a caller would meet them.
        client.predict("ROMEO:", "lstm", 64, 0.8, 50, 0, 1.0, 1, api_name="/generate")
        time.sleep(WARM_UP_SECONDS)
        print()
        print(
            f"python app.py on loopback (torch's default threads), gradio_client, "
            f"median of {repeats} calls after one warm-up:"
        )
        print(f"| model | /explain {len(text):,} chars (s) | within {TARGET_SECONDS} s |")
        print("|---|---:|---|")
        for folder in folders:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            seconds = median_seconds(
                lambda config=config: client.predict(
                    text, config["cell"], config["hidden_size"], TOP_K, api_name="/explain"
                ),
                repeats,
            )
            within = seconds * TARGET_CHARS / len(text) <= TARGET_SECONDS
            print(f"| {folder.name} | {seconds:.3f} | {'yes' if within else 'NO'} |")
        scoring = median_seconds(lambda: client.predict(text, api_name="/score"), repeats)
        print(f"| /score, all {len(folders)} models | {scoring:.3f} | - |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
