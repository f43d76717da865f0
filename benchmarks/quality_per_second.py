"""Validation loss per second of CPU: ``python -m benchmarks.quality_per_second``.

Trains, one after the other so that each has the whole machine, with ``python -m train``:

* **ours**: the project's CPU recipe (2x128 LSTM, seq 64, batch 16, AdamW 3e-3 with warm-up and
  cosine decay to the time budget);
* **tutorial**: char-rnn's defaults for the same 2x128 LSTM (seq 50, batch 50, Adam 2e-3 at a
  constant rate, no dropout);

for each time budget (default 90 s and 600 s) and prints the best validation loss of each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import SHIPPED_TEXT
from rnn_demo.cli.arguments import whole_number

RECIPES: dict[str, list[str]] = {
    "ours": ["--cell", "lstm", "--hidden-size", "128", "--num-layers", "2"],
    "tutorial": ["--cell", "lstm", "--hidden-size", "128", "--num-layers", "2", "--seq-len", "50", "--batch-size", "50",
                 "--lr", "2e-3", "--warmup-steps", "0", "--min-lr-ratio", "1", "--weight-decay", "0",
                 "--dropout", "0"],
}


def run(recipe: str, budget: int, data: str | None, out: Path, quick: bool) -> dict:
    command = [sys.executable, "-m", "train", *RECIPES[recipe], "--time-budget", str(budget),
               "--eval-every", "1000", "--quiet", "--out", str(out)]
    if data:
        command += ["--data", data]
    if quick:
        command += ["--hidden-size", "16", "--eval-every", "5"]
    completed = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if completed.returncode != 0:
        raise SystemExit(f"error: {recipe} at {budget} s failed:\n{completed.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHIPPED_TEXT), help="training text: a file or a Hub dataset id "
                        "(default: the repository's data/tinyshakespeare.txt)")
    parser.add_argument("--budgets", type=whole_number(1, 86_400), nargs="+", default=[90, 600],
                        help="training seconds per run (default: 90 600)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2-second budgets, hidden 16")
    args = parser.parse_args(argv)
    budgets = [2] if args.quick else args.budgets

    print(f"2x128 LSTM on one machine, runs one after the other; threads: {os.environ.get('OMP_NUM_THREADS', 'torch default')}")
    print("| budget | ours val nats/char | tutorial val nats/char | ours - tutorial | ours chars | tutorial chars |")
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for budget in budgets:
            ours = run("ours", budget, args.data, Path(scratch) / f"ours-{budget}", args.quick)
            tutorial = run("tutorial", budget, args.data, Path(scratch) / f"tutorial-{budget}", args.quick)
            print(f"| {budget} s | {ours['val_loss']:.4f} | {tutorial['val_loss']:.4f} "
                  f"| {ours['val_loss'] - tutorial['val_loss']:+.4f} | {ours['chars_seen']:,} | {tutorial['chars_seen']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
