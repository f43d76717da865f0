"""Which of AWD-LSTM's regularizers pay off here: ``python -m benchmarks.regularization``.

Starting from a full recipe (``FULL_RECIPE`` below, a 2x256 LSTM with AWD-LSTM's set: variational
dropout, DropConnect on the recurrent weights, embedding dropout, tied weights, weight decay; any
train flags given after the benchmark's own change it, e.g. ``--hidden-size 512``), each variant
removes one technique (or adds weight averaging); one variant drops them all. Every variant is a real
``python -m train`` run with the same steps and seed; the runs go in parallel (``--jobs``), each
in its own process with one thread (on a GPU they share the card). The table gives the best
validation loss of each, and its difference from the full recipe: for a "without" row, a positive
difference means the technique removed was helping.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import SHIPPED_TEXT

FULL_RECIPE = [
    "--cell", "lstm", "--hidden-size", "256", "--num-layers", "2", "--seq-len", "128", "--batch-size", "64",
    "--lr", "2e-3", "--warmup-steps", "200", "--min-lr-ratio", "0.05", "--grad-clip", "1.0", "--weight-decay", "0.1",
    "--dropout", "0.4", "--variational-dropout", "--weight-drop", "0.3", "--embedding-dropout", "0.1", "--tie-weights",
]
# (label, flags added to the full recipe)
VARIANTS: list[tuple[str, list[str]]] = [
    ("full recipe", []),
    ("without weight drop", ["--weight-drop", "0"]),
    ("without variational dropout (a fresh mask per step)", ["--no-variational-dropout"]),
    ("without embedding dropout", ["--embedding-dropout", "0"]),
    ("without weight tying", ["--no-tie-weights"]),
    ("with weight averaging over the last 25%", ["--average-after", "0.75"]),
    ("no regularization at all", ["--dropout", "0", "--weight-drop", "0", "--embedding-dropout", "0",
                                  "--no-variational-dropout", "--weight-decay", "0"]),
]


def _run_all(commands: dict[str, list[str]], out: Path, jobs: int) -> dict[str, int]:
    """Run the commands, at most ``jobs`` at once; each one's output goes to out/<label>.log."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    pending = list(commands.items())
    running: dict[str, tuple[subprocess.Popen, object]] = {}
    codes: dict[str, int] = {}
    while pending or running:
        while pending and len(running) < jobs:
            label, command = pending.pop(0)
            log = open(out / f"{label}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
            running[label] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log)
        for label, (process, log) in list(running.items()):
            if process.poll() is not None:
                log.close()
                codes[label] = process.returncode
                del running[label]
        time.sleep(0.2)
    return codes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHIPPED_TEXT), help="training text: a file or a Hub dataset id "
                        "(default: the repository's data/tinyshakespeare.txt)")
    parser.add_argument("--max-steps", type=int, default=3000, help="steps per run (default: 3000)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--jobs", type=int, default=len(VARIANTS), help="runs at once (default: all)")
    parser.add_argument("--out", default=None, help="folder for the runs (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: three of the variants, hidden 16, 4 steps each")
    # Any other flags are train flags that change the full recipe, e.g. --hidden-size 512.
    args, recipe_flags = parser.parse_known_args(argv)
    if args.jobs < 1 or args.max_steps < 1:
        parser.error("--jobs and --max-steps must be positive")

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="regularization-"))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"cannot create {out}: {error}")
    common = [*FULL_RECIPE, *recipe_flags, "--device", args.device, "--quiet"]
    if args.data:
        common += ["--data", args.data]
    if args.quick:
        common += ["--hidden-size", "16", "--seq-len", "16", "--batch-size", "4", "--max-steps", "4", "--eval-every", "2"]
    else:
        common += ["--max-steps", str(args.max_steps), "--eval-every", str(max(args.max_steps // 10, 1))]
    variants = [VARIANTS[0], VARIANTS[1], VARIANTS[-1]] if args.quick else VARIANTS
    commands = {
        f"v{i}": [sys.executable, "-m", "train", *common, *flags, "--out", str(out / f"v{i}")]
        for i, (_, flags) in enumerate(variants)
    }
    started = time.perf_counter()
    codes = _run_all(commands, out, args.jobs)

    recipe = " ".join([*FULL_RECIPE, *recipe_flags])
    print(f"Regularization, full recipe `{recipe}`, one variant per row ({time.perf_counter() - started:.0f} s, "
          f"runs in {out})")
    print("| variant | flags | best val nats/char | change vs full recipe | steps | training s | device |")
    print("|---|---|---|---|---|---|---|")
    full = None
    failed = 0
    for i, (label, flags) in enumerate(variants):
        metrics_path = out / f"v{i}" / "metrics.json"
        if codes[f"v{i}"] != 0 or not metrics_path.is_file():
            failed += 1
            print(f"| {label} | `{' '.join(flags)}` | failed (exit {codes[f'v{i}']}, see {out / f'v{i}.log'}) | | | | |")
            continue
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        if i == 0:
            full = metrics["val_loss"]
        delta = "" if full is None or i == 0 else f"{metrics['val_loss'] - full:+.4f}"
        print(f"| {label} | `{' '.join(flags) or '-'}` | {metrics['val_loss']:.4f} | {delta} | {metrics['steps']} "
              f"| {metrics['train_seconds']:.0f} | {metrics['device']} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
