"""Validation loss per second of CPU: ``python -m benchmarks.quality_per_second [--poems]``.

Trains, one after the other so that each has the whole machine, with ``python -m train``:

* **ours**: the project's CPU recipe (2x128 LSTM, seq 64, batch 16, AdamW 3e-3 with warm-up and
  cosine decay to the time budget);
* **tutorial**: char-rnn's defaults for the same 2x128 LSTM (seq 50, batch 50, Adam 2e-3 at a
  constant rate, no dropout);

for each time budget (default 90 s and 600 s) and prints the best validation loss of each.

With ``--poems`` the text is the Tang poems (data/tang) and the pair is the recipe of the shipped
poem model (preset tang-lstm-256: 2x256 LSTM, batch 32, dropout 0.1, AdamW 3e-3 with warm-up and
cosine decay) against **pytorch-book**, the recipe of chapter 9 of chenyuntc/pytorch-book
(神经网络写诗: a 2-layer LSTM, embedding 128, hidden 256, Adam 1e-3 at a constant rate, batches of
128 sequences of 125 characters, no dropout), for 600 s and 1,800 s by default.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import PROJECT_ROOT, SHIPPED_TEXT
from rnn_demo.cli.arguments import whole_number

CONSTANT_ADAM = ["--warmup-steps", "0", "--min-lr-ratio", "1", "--weight-decay", "0", "--dropout", "0"]
RECIPES: dict[str, list[str]] = {
    "ours": ["--cell", "lstm", "--hidden-size", "128", "--num-layers", "2"],
    "tutorial": ["--cell", "lstm", "--hidden-size", "128", "--num-layers", "2", "--seq-len", "50", "--batch-size", "50",
                 "--lr", "2e-3", *CONSTANT_ADAM],
}
POEM_RECIPES: dict[str, list[str]] = {
    "ours": ["--cell", "lstm", "--hidden-size", "256", "--num-layers", "2", "--batch-size", "32", "--dropout", "0.1"],
    "pytorch-book": ["--cell", "lstm", "--hidden-size", "256", "--num-layers", "2", "--embedding-dim", "128",
                     "--seq-len", "125", "--batch-size", "128", "--lr", "1e-3", *CONSTANT_ADAM],
}
POEMS_TEXT = str(PROJECT_ROOT / "data" / "tang")


def run(recipe: list[str], budget: int, data: str | None, out: Path, quick: bool) -> dict:
    command = [sys.executable, "-m", "train", *recipe, "--time-budget", str(budget),
               "--eval-every", "1000", "--quiet", "--out", str(out)]
    if data:
        command += ["--data", data]
    if quick:
        command += ["--hidden-size", "16"]
    completed = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if completed.returncode != 0:
        raise SystemExit(f"error: {' '.join(recipe)} at {budget} s failed:\n{completed.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHIPPED_TEXT), help="training text: a file or a Hub dataset id "
                        "(default: the repository's data/tinyshakespeare.txt)")
    parser.add_argument("--budgets", type=whole_number(1, 86_400), nargs="+", default=None,
                        help="training seconds per run (default: 90 600; with --poems 600 1800)")
    parser.add_argument("--poems", action="store_true", help="the Tang poems: ours against pytorch-book's recipe")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2-second budgets, hidden 16")
    args = parser.parse_args(argv)
    recipes, data = (POEM_RECIPES, POEMS_TEXT) if args.poems else (RECIPES, args.data)
    budgets = [2] if args.quick else args.budgets or ([600, 1800] if args.poems else [90, 600])
    (_, ours_recipe), (anchor, anchor_recipe) = recipes.items()

    threads = os.environ.get("OMP_NUM_THREADS", "torch default")
    print(f"{'the Tang poems' if args.poems else '2x128 LSTM'} on one machine, runs one after the other; threads: {threads}")
    print(f"| budget | ours val nats/char | {anchor} val nats/char | ours - {anchor} | ours chars | {anchor} chars |")
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for budget in budgets:
            ours = run(ours_recipe, budget, data, Path(scratch) / f"ours-{budget}", args.quick)
            other = run(anchor_recipe, budget, data, Path(scratch) / f"{anchor}-{budget}", args.quick)
            print(f"| {budget} s | {ours['val_loss']:.4f} | {other['val_loss']:.4f} "
                  f"| {ours['val_loss'] - other['val_loss']:+.4f} | {ours['chars_seen']:,} | {other['chars_seen']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
