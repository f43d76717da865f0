"""The measurements behind rnn_demo/engine.py's design: ``python -m benchmarks.engine_choices``.

    python -m benchmarks.engine_choices            # lstm-h512 from models/, 2000 repeats
    python -m benchmarks.engine_choices --quick    # a random 2x64 LSTM, few repeats (a smoke test)

Prints, one thread each for torch and NumPy's OpenBLAS:

1. one row's product, (1, H) @ (H, 4H): ``torch.mm`` against NumPy's matmul;
2. batch invariance of a plain batched product: for batch sizes 2 to 64, how many give row i
   bits other than row i stepped alone (torch.mm, and NumPy's 2-D matmul, which calls gemm);
3. 16 rows of the model's two layer products: one row, one gemm of 16 rows, and the row-by-row
   stack the engine uses (``np.matmul`` of (16, 1, K) rows);
4. a whole ``Stepper.step`` with its matrices row-major (as the engine keeps them) and
   column-major (what a concatenation of transposed views gives).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from rnn_demo.arguments import existing_folder, whole_number
from rnn_demo.engine import Stepper, _rowwise, use_one_blas_thread
from rnn_demo.model import CharRNN

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def microseconds(function, repeats: int) -> float:
    for _ in range(max(5, repeats // 20)):  # warm up
        function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats * 1e6


def batch_sizes_that_differ(product, rows: np.ndarray, weight: np.ndarray) -> int:
    """Batch sizes (2..len(rows)) at which some row of ``product`` differs from that row alone."""
    alone = np.concatenate([product(rows[i : i + 1], weight) for i in range(len(rows))])
    return sum(not np.array_equal(product(rows[:size], weight), alone[:size]) for size in range(2, len(rows) + 1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=existing_folder, default=str(MODELS_DIR / "lstm-h512"),
                        help="an LSTM model folder (default: the shipped lstm-h512)")
    parser.add_argument("--repeats", type=whole_number(1, 1_000_000), default=2000, help="timed calls per figure")
    parser.add_argument("--quick", action="store_true", help="a random 2x64 LSTM and 20 repeats, for a smoke test")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        torch.manual_seed(0)
        model = CharRNN("".join(chr(c) for c in range(32, 97)), cell="lstm", hidden_size=64, num_layers=2).eval()
    else:
        model = CharRNN.from_pretrained(args.model_dir).eval()
    repeats = 20 if args.quick else args.repeats
    if model.cell != "lstm" or model.num_layers != 2:
        parser.error("--model-dir must hold a 2-layer LSTM")
    stepper = Stepper(model)  # also puts OpenBLAS on one thread
    use_one_blas_thread()
    size, rng = model.hidden_size, np.random.default_rng(0)
    name = f"lstm-h{size}"
    print(f"{name}; torch threads: {torch.get_num_threads()}, OpenBLAS threads: 1\n")

    weight = rng.standard_normal((size, 4 * size), dtype=np.float32)
    row = rng.standard_normal((1, size), dtype=np.float32)
    torch_weight, torch_row = torch.from_numpy(weight), torch.from_numpy(row)
    print(f"| one row, (1, {size}) @ ({size}, {4 * size}) | µs |\n|---|---:|")
    print(f"| torch.mm | {microseconds(lambda: torch.mm(torch_row, torch_weight), repeats):.0f} |")
    print(f"| NumPy matmul | {microseconds(lambda: row @ weight, repeats):.0f} |\n")

    rows = rng.standard_normal((64, size), dtype=np.float32)
    differing_torch = batch_sizes_that_differ(
        lambda x, w: torch.mm(torch.from_numpy(x), torch.from_numpy(w)).numpy(), rows, weight
    )
    differing_numpy = batch_sizes_that_differ(np.matmul, rows, weight)
    differing_rowwise = batch_sizes_that_differ(_rowwise, rows, weight)
    print("| batched product | batch sizes 2-64 where a row differs from the row alone |\n|---|---:|")
    print(f"| torch.mm | {differing_torch} of 63 |\n| NumPy 2-D matmul (gemm) | {differing_numpy} of 63 |")
    print(f"| the engine's row-by-row stack | {differing_rowwise} of 63 |\n")

    products = [(stepper.first_recurrent, size), (stepper.upper[0][0], 2 * size)]
    inputs = {batch: [rng.standard_normal((batch, k), dtype=np.float32) for _, k in products] for batch in (1, 16)}

    def layers(product, batch):
        return lambda: [product(x, w) for x, (w, _) in zip(inputs[batch], products)]

    one = microseconds(layers(np.matmul, 1), repeats)
    gemm = microseconds(layers(np.matmul, 16), repeats)
    rowwise = microseconds(layers(_rowwise, 16), repeats)
    print(f"| {name}'s two layer products | µs | x one row |\n|---|---:|---:|")
    print(f"| one row | {one:.0f} | 1.0 |\n| 16 rows, one gemm | {gemm:.0f} | {gemm / one:.1f} |")
    print(f"| 16 rows, row by row (the engine) | {rowwise:.0f} | {rowwise / one:.1f} |\n")

    tokens, state = np.array([3]), stepper.zero_state(1)
    row_major = microseconds(lambda: stepper.step(tokens, state), repeats)
    stepper.first_recurrent = np.asfortranarray(stepper.first_recurrent)
    stepper.upper = [(np.asfortranarray(w), b) for w, b in stepper.upper]
    column_major = microseconds(lambda: stepper.step(tokens, state), repeats)
    print(f"| one Stepper.step of {name} | µs |\n|---|---:|")
    print(f"| matrices row-major (the engine) | {row_major:.0f} |\n| matrices column-major | {column_major:.0f} |")


if __name__ == "__main__":
    main()
