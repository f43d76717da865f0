"""Generation speed at batch 1 for each shipped model, side by side in one process.

    python -m benchmarks.sampling_speed            # 2000 characters at temperature 0.8
    python -m benchmarks.sampling_speed --quick    # a smoke run

Columns: ``engine`` (rnn_demo.generation.sampling's generate: the NumPy engine, one thread);
``naive``, the loop a tutorial writes (the torch module called per character, softmax,
torch.multinomial, ``.item()``); ``floor``, the bare products a step cannot avoid, timed alone for
the same number of characters: per character, the first layer's ``h @ W_hh`` (its input part is a
row lookup) and, for every layer above it, ``[x, h] @ [W_ih; W_hh]`` (the layer's input is the
output of the layer below, computed in the same step), each timed with torch.mm and with NumPy's
matmul (one thread) and the faster kept; and the time per character at 500 and 5000 characters,
which must be flat (no re-reading of the prefix). The engine and the floor are timed in turns
(``--rounds``, 5 by default) and the fastest of each is kept; the naive loop runs once.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks import PROJECT_ROOT, text_model_folders, use_one_blas_thread
from rnn_demo.cli.arguments import existing_folder, finite_number, whole_number
from rnn_demo.generation.sampling import generate
from rnn_demo.model import CharRNN

MODELS_DIR = PROJECT_ROOT / "models"


def seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


@torch.inference_mode()
def naive_generate(model: CharRNN, prompt: str, length: int, temperature: float) -> str:
    """What a tutorial writes: the whole module per character, softmax, multinomial, .item()."""
    idx = torch.tensor([model.tokenizer.encode(prompt)])
    logits, hidden = model(idx)
    out = []
    for _ in range(length):
        probs = torch.softmax(logits[0, -1] / temperature, dim=-1)
        token = torch.multinomial(probs, 1).item()
        out.append(model.vocab[token])
        logits, hidden = model(torch.tensor([[token]]), hidden)
    return "".join(out)


@torch.inference_mode()
def products_floor(model: CharRNN, length: int) -> float:
    """Seconds for the bare products of ``length`` steps (see the module's doc), the faster of
    torch.mm and NumPy's matmul."""
    size, gate_width = model.hidden_size, model.rnn.weight_hh_l0.shape[0]
    rows = [size] + [2 * size] * (model.num_layers - 1)
    weights = [torch.randn(k, gate_width) for k in rows]
    inputs = [torch.randn(1, k) for k in rows]
    arrays = [(x.numpy(), w.numpy()) for x, w in zip(inputs, weights)]

    def with_torch():
        for _ in range(length):
            for x, weight in zip(inputs, weights):
                torch.mm(x, weight)

    def with_numpy():
        for _ in range(length):
            for x, weight in arrays:
                np.matmul(x, weight)

    use_one_blas_thread()
    return min(seconds(with_torch), seconds(with_numpy))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=existing_folder, default=str(MODELS_DIR), help="folder of model folders")
    parser.add_argument("--chars", type=whole_number(1, 100_000), default=2000, help="characters per timed generation")
    parser.add_argument(
        "--temperature", type=finite_number(0, 10, above_minimum=True), default=0.8, help="sampling temperature (> 0)"
    )
    parser.add_argument(
        "--rounds", type=whole_number(1, 100), default=5, help="turns of generate and the floors (the fastest is kept)"
    )
    parser.add_argument("--quick", action="store_true", help="few characters, for a smoke test")
    args = parser.parse_args(argv)
    short, long = (50, 500) if args.quick else (500, 5000)
    chars = 100 if args.quick else args.chars
    rounds = 1 if args.quick else args.rounds

    folders = sorted(text_model_folders(args.models_dir), key=lambda folder: folder.name)
    use_one_blas_thread()
    print(
        f"batch 1, {chars} characters, temperature {args.temperature}, torch threads: {torch.get_num_threads()}, "
        f"one BLAS thread; the engine and the floor: the fastest of {rounds} turns, the naive loop: one run"
    )
    print(
        f"| model | engine chars/s | naive chars/s | engine / naive | floor chars/s | engine / floor time "
        f"| µs/char at {short} | µs/char at {long} |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for folder in folders:
        model = CharRNN.from_pretrained(folder)

        def generate_chars(length=chars, seed=0, model=model):
            return lambda: generate(model, "ROMEO:", length, temperature=args.temperature, seed=seed)

        generate_chars(50)()  # warm up
        naive = seconds(lambda: naive_generate(model, "ROMEO:", chars, args.temperature))
        # the engine and the floor, taken in turns, the fastest of each kept: on a shared machine
        # the noise only ever adds time, to either side, and runs minutes apart differ by ±25%.
        turns = [(seconds(generate_chars()), products_floor(model, chars)) for _ in range(rounds)]
        ours, floor = (min(times) for times in zip(*turns))
        at_short = seconds(generate_chars(short, seed=1)) / short
        at_long = seconds(generate_chars(long, seed=1)) / long
        print(
            f"| {folder.name} | {chars / ours:,.0f} | {chars / naive:,.0f} | {naive / ours:.1f}x "
            f"| {chars / floor:,.0f} | {ours / floor:.2f}x | {at_short * 1e6:.0f} | {at_long * 1e6:.0f} |"
        )


if __name__ == "__main__":
    main()
