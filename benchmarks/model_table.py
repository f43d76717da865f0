"""Print the README's table of shipped models, measured: ``python -m benchmarks.model_table``.

Each row comes from a model folder's ``metrics.json`` (written by training, completed by
``python -m rnn_demo.publish zoo``); with ``--check`` the validation loss is measured again
from the shipped weights and must agree with ``metrics.json`` to 0.005 nats/char.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from benchmarks import PROJECT_ROOT, text_model_folders
from rnn_demo.cli.arguments import existing_folder
from rnn_demo.model import CharRNN, CheckpointError, bits_per_char
from rnn_demo.training.data import DataLoadError, load_text_splits
from rnn_demo.training.loop import evaluate

MODELS_DIR = PROJECT_ROOT / "models"
AGREEMENT = 0.005  # nats/char


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models-dir", type=existing_folder, default=str(MODELS_DIR), help="folder of <cell>-h<size>/ model folders"
    )
    parser.add_argument("--check", action="store_true", help="re-measure validation loss from the shipped weights")
    parser.add_argument("--data", default=None, help="text to re-measure on (default: each run's --data)")
    args = parser.parse_args(argv)
    try:
        return print_table(args.models_dir, args.check, args.data)
    except (DataLoadError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def print_table(models_dir: Path, check: bool, data: str | None) -> int:
    """Print the table (re-measuring with ``check``); the number of models that disagree with metrics.json."""
    runs = {p: json.loads((p / "metrics.json").read_text(encoding="utf-8")) for p in text_model_folders(models_dir)
            if (p / "metrics.json").is_file()}
    folders = sorted(runs, key=lambda p: (runs[p]["model"]["cell"], runs[p]["model"]["hidden_size"]))
    header = "| model | parameters | val nats/char | val bits/char | test bits/char | size | training | device |"
    if check:
        header += " re-measured val (nats/char) |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    failures = 0
    for folder in folders:
        metrics = runs[folder]
        size_kb = (folder / "model.safetensors").stat().st_size / 1024
        row = (
            f"| {folder.name} | {metrics['params']:,} | {metrics['val_loss']:.3f} | {metrics['val_bpc']:.3f} "
            f"| {metrics['test_bpc']:.3f} "
            f"| {size_kb:,.0f} KB ({metrics.get('weights_dtype', 'float32')}) "
            f"| {metrics['train_seconds']:,.0f} s, {metrics['chars_seen'] / 1e6:.1f}M chars | {metrics['device']} |"
        )
        if check:
            model = CharRNN.from_pretrained(folder)
            config = metrics["config"]
            # A run's --data is a path relative to the repository (data/tinyshakespeare.txt) or a Hub id.
            source = data or config["data"]
            if not Path(source).exists() and (PROJECT_ROOT / source).exists():
                source = str(PROJECT_ROOT / source)
            splits = load_text_splits(source, config["text_column"], config["split"])
            val_loss = evaluate(model, torch.tensor(model.tokenizer.encode(splits.validation)))
            agrees = abs(val_loss - metrics["val_loss"]) <= AGREEMENT
            failures += not agrees
            row += f" {val_loss:.4f} ({bits_per_char(val_loss):.3f} bits) {'ok' if agrees else 'DIFFERS'} |"
        print(row)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
