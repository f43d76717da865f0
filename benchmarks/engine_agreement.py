"""How often the two engines write the same text: every shipped model, many seeds.

    python -m benchmarks.engine_agreement            # 100 seeds x 300 characters per model
    python -m benchmarks.engine_agreement --quick    # a smoke run

The reference engine (NumPy) and the compiled one (numba) compute the same step to float32
rounding, and the same distribution and draw from the same logits, bit for bit; their last bits
differ, so a draw that is a near tie may go the other way, and the texts part from there. For
each model: the seeds whose texts are the same, and, over the others, where they part (the first
character that differs). Temperature 0.8, prompt "ROMEO:".
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from benchmarks import PROJECT_ROOT
from rnn_demo.cli.arguments import existing_folder, whole_number
from rnn_demo.generation import engines
from rnn_demo.generation.sampling import generate
from rnn_demo.model import CharRNN


def first_difference(a: str, b: str) -> int | None:
    """Index of the first character where ``a`` and ``b`` differ; None when they are the same."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=existing_folder, default=str(PROJECT_ROOT / "models"))
    parser.add_argument("--seeds", type=whole_number(1, 10_000), default=100, help="seeds per model")
    parser.add_argument("--chars", type=whole_number(1, 100_000), default=300, help="characters per text")
    parser.add_argument("--quick", action="store_true", help="3 seeds of 50 characters")
    args = parser.parse_args(argv)
    seeds, chars = (3, 50) if args.quick else (args.seeds, args.chars)
    compiled = engines.wait_compiled()
    if compiled is None:
        reason = engines.state()[1]
        raise SystemExit(f"engine_agreement compares with the compiled engine, which is not available: {reason}")
    print(f"{seeds} seeds x {chars} characters per model, temperature 0.8")
    print("| model | same text | where they part (median character) | earliest |")
    print("|---|---:|---:|---:|")
    for folder in sorted(p for p in Path(args.models_dir).iterdir() if (p / "config.json").is_file()):
        model = CharRNN.from_pretrained(folder).eval()
        parts = []
        for seed in range(seeds):
            texts = [
                generate(model, "ROMEO:", chars, temperature=0.8, seed=seed, engine=engine)
                for engine in (engines.REFERENCE, compiled)
            ]
            index = first_difference(*texts)
            if index is not None:
                parts.append(index)
        median = f"{statistics.median(parts):.0f}" if parts else "-"
        earliest = f"{min(parts)}" if parts else "-"
        print(f"| {folder.name} | {seeds - len(parts)} of {seeds} | {median} | {earliest} |", flush=True)


if __name__ == "__main__":
    main()
