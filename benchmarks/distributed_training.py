"""Training throughput on 1 and on N processes under torchrun: ``python -m benchmarks.distributed_training``

Each row is a real ``torchrun --standalone --nproc_per_node N -m train`` run on the shipped text,
with the same global batch (``--batch-size`` is divided among the ranks), timed by the trainer
itself: rank 0 logs the characters per second of the whole run (every rank's characters) over
windows of ``--window`` steps; the table gives the median after the first window. Validation
runs only at the end, outside the windows.

On CPU, each process gets ``cores / N`` threads, and the 1-process row is given both with one
thread and with every core, so the table shows what a second process buys over a second thread.
Scaling efficiency is ``rate(N) / (N x rate(1 process, same threads per process))``. With
``--device cuda`` each process takes one GPU (``--max-processes`` up to the GPUs there are).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import SHIPPED_TEXT
from rnn_demo.cli.arguments import whole_number

REPO_ROOT = Path(__file__).resolve().parents[1]


def run(processes: int, threads: int, args, scratch: Path) -> float:
    """Median characters per second of one torchrun run (after its first window)."""
    out = scratch / f"p{processes}-t{threads}"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
        "-m", "train", "--data", args.data, "--out", str(out), "--quiet", "--device", args.device,
        "--cell", args.cell, "--hidden-size", str(args.hidden_size), "--num-layers", str(args.num_layers),
        "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
        "--max-steps", str(args.window * args.windows), "--log-every", str(args.window), "--eval-every", "1000000000",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    finished = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise SystemExit(f"torchrun with {processes} processes failed:\n{finished.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["chars_per_sec"] for r in records if "chars_per_sec" in r]
    return statistics.median(rates[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHIPPED_TEXT), help="text to train on (default: data/tinyshakespeare.txt)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--cell", choices=("rnn", "gru", "lstm"), default="lstm")
    parser.add_argument("--hidden-size", type=whole_number(1, 8192), default=256)
    parser.add_argument("--num-layers", type=whole_number(1, 8), default=2)
    parser.add_argument("--batch-size", type=whole_number(1, 65536), default=32, help="the global batch")
    parser.add_argument("--seq-len", type=whole_number(1, 10_000), default=64)
    parser.add_argument("--window", type=whole_number(1, 10_000), default=10, help="steps per timed window")
    parser.add_argument("--windows", type=whole_number(2, 1000), default=6, help="timed windows (the first is warm-up)")
    parser.add_argument("--max-processes", type=whole_number(2, 64), default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke run: hidden 32, 1 layer, batch 4, seq 16")
    args = parser.parse_args(argv)
    if args.quick:
        args.hidden_size, args.num_layers, args.batch_size, args.seq_len, args.window, args.windows = 32, 1, 4, 16, 2, 3
    if args.batch_size % args.max_processes:
        parser.error(f"--batch-size {args.batch_size} must divide among {args.max_processes} processes")

    if args.device == "cuda":
        import torch

        gpus = torch.cuda.device_count()
        if gpus < 1:
            parser.error("--device cuda: torch sees no GPU here")
        plan = [(n, 1) for n in range(1, min(args.max_processes, gpus) + 1)]
        where = torch.cuda.get_device_name(0) + f" x {gpus}"
    else:
        cores = os.cpu_count() or 1
        plan = [(1, 1), (1, cores)] + [(n, max(1, cores // n)) for n in range(2, args.max_processes + 1)]
        plan = list(dict.fromkeys(plan))
        where = f"CPU, {cores} cores"

    with tempfile.TemporaryDirectory() as scratch:
        rates = {entry: run(*entry, args, Path(scratch)) for entry in plan}

    print(f"{args.num_layers}x{args.hidden_size} {args.cell.upper()}, global batch {args.batch_size}, seq {args.seq_len}, "
          f"{where}; median of {args.windows - 1} windows of {args.window} steps")
    print("| processes | threads each | chars/s | speed-up | scaling efficiency |")
    print("|---:|---:|---:|---:|---:|")
    base = {threads: rate for (processes, threads), rate in rates.items() if processes == 1}
    one = rates[plan[0]]
    for (processes, threads), rate in rates.items():
        reference = base.get(threads)
        efficiency = f"{rate / (processes * reference):.2f}" if reference and processes > 1 else "-"
        print(f"| {processes} | {threads} | {rate:,.0f} | {rate / one:.2f} | {efficiency} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
