"""Run the benchmarks one after the other: ``python -m benchmarks [--quick] [--training]``.

Each benchmark runs as its own process (so that one's threads and imports do not colour the
next) and prints its table; a summary of exit codes ends the run. ``--quick`` passes each its
smoke-test mode. The training benchmarks (regularization, quality per CPU second) take from
minutes (GPU) to hours (CPU) and run only with ``--training``. Extra flags: ``--data FILE``
for the benchmarks that read text (by default the repository's data/tinyshakespeare.txt).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

# (module, reads --data, has --quick)
PERFORMANCE = [
    ("rnn_vs_torch", False, True),
    ("sampling_speed", False, True),
    ("trainer_throughput", True, True),
    ("many_users", False, True),
    ("startup", False, True),
    ("load", False, True),
    ("model_table", True, False),
    ("views", False, True),
    ("training_service", False, True),
    ("distributed_training", True, True),
    ("streaming_memory", False, True),
    ("poems", False, True),
]
TRAINING = [
    ("quality_per_second", True, True),
    ("regularization", True, True),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every benchmark in its smoke-test mode")
    parser.add_argument("--training", action="store_true", help="also the training benchmarks (long)")
    parser.add_argument("--data", default=None, help="text for the benchmarks that read it")
    parser.add_argument("--only", nargs="+", default=None, help="run only these benchmarks (module names)")
    args = parser.parse_args(argv)

    plan = PERFORMANCE + (TRAINING if args.training else [])
    known = {name for name, _, _ in PERFORMANCE + TRAINING}
    if args.only:
        unknown = sorted(set(args.only) - known)
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
        plan = [entry for entry in PERFORMANCE + TRAINING if entry[0] in args.only]

    results = []
    for name, reads_data, has_quick in plan:
        command = [sys.executable, "-m", f"benchmarks.{name}"]
        if args.quick and has_quick:
            command.append("--quick")
        if name == "model_table":
            command.append("--check")
        if reads_data and args.data:
            command += ["--data", args.data]
        print(f"\n## {name}: {' '.join(command[1:])}\n", flush=True)
        started = time.perf_counter()
        code = subprocess.call(command)
        results.append((name, code, time.perf_counter() - started))

    print("\n| benchmark | exit | seconds |\n|---|---:|---:|")
    for name, code, seconds in results:
        print(f"| {name} | {code} | {seconds:.0f} |")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
