"""The measurements behind rnn_demo/generation/stepper.py's design: ``python -m benchmarks.engine_choices``.

    python -m benchmarks.engine_choices            # lstm-h512 from models/, 2000 repeats
    python -m benchmarks.engine_choices --quick    # a random 2x64 LSTM, few repeats (a smoke test)

Prints, one thread each for torch and NumPy's OpenBLAS:

1. one row's product, (1, H) @ (H, 4H): ``torch.mm``, NumPy's matmul and the engine's compiled
   product (``rnn_demo.generation.kernels.add_product``);
2. batch invariance of a batched product: for batch sizes 2 to 64, how many give row i bits
   other than row i alone (torch.mm, NumPy's 2-D matmul, which calls gemm, a stack of one-row
   products, and the engine's compiled product);
3. 16 rows of the model's products (layer 0's h @ W_hh, layer 1's x @ W_ih and h @ W_hh): one
   row, one gemm of 16 rows, NumPy row by row (``np.matmul`` of (16, 1, K) rows, what the
   engine did before it was compiled), and the engine's compiled product of one row and of 16
   (on the weights in column panels, as a Stepper keeps them);
4. a whole ``Stepper.step`` at batch 1 and 16.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks import PROJECT_ROOT, use_one_blas_thread
from rnn_demo.cli.arguments import existing_folder, whole_number
try:
    from rnn_demo.generation import kernels
except ImportError as error:  # numba is not available: there is no compiled product to measure
    raise SystemExit(f"benchmarks.engine_choices measures the compiled kernels, and numba is not available: {error}")
from rnn_demo.generation.stepper import Stepper
from rnn_demo.model import CharRNN

MODELS_DIR = PROJECT_ROOT / "models"


def microseconds(function, repeats: int) -> float:
    for _ in range(max(5, repeats // 20)):  # warm up
        function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats * 1e6


def rowwise(rows: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """rows (B, K) @ weight (K, N) as one NumPy vector-matrix product per row."""
    return np.matmul(rows[:, None, :], weight)[:, 0]


def compiled(rows: np.ndarray, panels: np.ndarray, width: int) -> np.ndarray:
    """rows (B, K) @ W (K, width) by the engine's compiled product, W given as its column panels
    (``kernels.pack_columns``: a Stepper packs its matrices once, when it is made)."""
    out = np.zeros((len(rows), width), np.float32)
    kernels.add_product(np.ascontiguousarray(rows), panels, out)
    return out


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
    stepper = Stepper(model)
    use_one_blas_thread()
    size, rng = model.hidden_size, np.random.default_rng(0)
    name = f"lstm-h{size}"
    print(f"{name}; torch threads: {torch.get_num_threads()}, OpenBLAS threads: 1\n")

    weight = rng.standard_normal((size, 4 * size), dtype=np.float32)
    row = rng.standard_normal((1, size), dtype=np.float32)
    torch_weight, torch_row = torch.from_numpy(weight), torch.from_numpy(row)
    print(f"| one row, (1, {size}) @ ({size}, {4 * size}) | µs |\n|---|---:|")
    print(f"| torch.mm | {microseconds(lambda: torch.mm(torch_row, torch_weight), repeats):.0f} |")
    print(f"| NumPy matmul | {microseconds(lambda: row @ weight, repeats):.0f} |")
    panels = kernels.pack_columns(weight)
    engine_row = microseconds(lambda: compiled(row, panels, 4 * size), repeats)
    print(f"| the engine's compiled product | {engine_row:.0f} |\n")

    rows = rng.standard_normal((64, size), dtype=np.float32)
    differing = {
        "torch.mm": batch_sizes_that_differ(
            lambda x, w: torch.mm(torch.from_numpy(x), torch.from_numpy(w)).numpy(), rows, weight
        ),
        "NumPy 2-D matmul (gemm)": batch_sizes_that_differ(np.matmul, rows, weight),
        "NumPy row by row": batch_sizes_that_differ(rowwise, rows, weight),
        "the engine's compiled product": batch_sizes_that_differ(
            lambda x, w: compiled(x, panels, w.shape[1]), rows, weight  # w is weight, packed once above
        ),
    }
    print("| batched product | batch sizes 2-64 where a row differs from the row alone |\n|---|---:|")
    for label, count in differing.items():
        print(f"| {label} | {count} of 63 |")
    print()

    names = ("weight_hh_l0", "weight_ih_l1", "weight_hh_l1")
    products = [getattr(model.rnn, name).detach().t().contiguous().numpy() for name in names]  # (K, N)
    layer_panels = [kernels.pack_columns(weight) for weight in products]
    inputs = {batch: rng.standard_normal((batch, size), dtype=np.float32) for batch in (1, 16)}

    def layers(product, batch):
        return lambda: [product(inputs[batch], weight) for weight in products]

    def engine_layers(batch):
        return lambda: [compiled(inputs[batch], panel, 4 * size) for panel in layer_panels]

    one = microseconds(layers(np.matmul, 1), repeats)
    timings = {
        "one row": one,
        "16 rows, one gemm": microseconds(layers(np.matmul, 16), repeats),
        "16 rows, NumPy row by row": microseconds(layers(rowwise, 16), repeats),
        "one row, the engine's compiled product": microseconds(engine_layers(1), repeats),
        "16 rows, the engine's compiled product": microseconds(engine_layers(16), repeats),
    }
    print(f"| {name}'s three layer products | µs | x one row |\n|---|---:|---:|")
    for label, time_taken in timings.items():
        print(f"| {label} | {time_taken:.0f} | {time_taken / one:.1f} |")
    print()

    print(f"| one Stepper.step of {name} | µs | characters/s |\n|---|---:|---:|")
    for batch in (1, 16):
        tokens, state = np.arange(batch) % model.vocab_size, stepper.zero_state(batch)
        time_taken = microseconds(lambda: stepper.step(tokens, state), repeats)
        print(f"| batch {batch} | {time_taken:.0f} | {batch / time_taken * 1e6:,.0f} |")


if __name__ == "__main__":
    main()
