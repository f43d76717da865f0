"""Does ``python -m train`` add overhead to the bare training step? ``python -m benchmarks.trainer_throughput``

Side by side in one process, on the same TBPTT batches (default: the shipped lstm-512 recipe,
2x512 LSTM, batch 32, seq 64, dropout 0.25):

* the bare loop a tutorial would write: nn.Embedding -> nn.LSTM -> nn.Linear, cross-entropy,
  backward, gradient clipping, AdamW, the state carried and detached;
* the project's trainer, :func:`rnn_demo.training.loop.train`, with its data, logging, checkpoints
  and learning-rate schedule (validation only at the end, outside the timed windows).

Both are timed over windows of ``--window`` steps after a warm-up window; the table gives the
median characters per second and the ratio trainer / bare (issue #6 asks >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks import SHIPPED_TEXT
from rnn_demo.cli.arguments import whole_number
from rnn_demo.model.tokenizer import CharTokenizer
from rnn_demo.training.data import TBPTTBatches, load_text_splits
from rnn_demo.training.loop import TrainConfig, train

CORPUS_CHARS = 200_000  # the trainer reads a file; a short one keeps its final evaluation short


def bare_loop(ids: torch.Tensor, vocab_size: int, args, windows: int) -> list[float]:
    """Characters per second of each window of the bare loop."""
    torch.manual_seed(0)
    embedding = nn.Embedding(vocab_size, args.hidden_size)
    lstm = nn.LSTM(args.hidden_size, args.hidden_size, 2, batch_first=True, dropout=args.dropout)
    head = nn.Linear(args.hidden_size, vocab_size)
    drop = nn.Dropout(args.dropout)
    parameters = [*embedding.parameters(), *lstm.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=3e-3, betas=(0.9, 0.99), weight_decay=0.0)
    batches = TBPTTBatches(ids, args.batch_size, args.seq_len)
    hidden = None
    rates = []
    step = 0
    for _ in range(windows):
        started = time.perf_counter()
        for _ in range(args.window):
            inputs, targets = batches[step % len(batches)]
            output, hidden = lstm(drop(embedding(inputs)), hidden)
            logits = head(drop(output))
            loss = F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            hidden = tuple(h.detach() for h in hidden)
            step += 1
        rates.append(args.window * inputs.numel() / (time.perf_counter() - started))
    return rates


def trainer_loop(corpus: Path, args, windows: int, out: Path) -> list[float]:
    """Characters per second of each logging window of the trainer (its own measurement)."""
    config = TrainConfig(
        data=str(corpus), cell="lstm", hidden_size=args.hidden_size, num_layers=2, dropout=args.dropout,
        seq_len=args.seq_len, batch_size=args.batch_size, max_steps=windows * args.window,
        eval_every=10**9, log_every=args.window, device="cpu",
    )
    train(config, out, show_progress=False, log=lambda message: None)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r["chars_per_sec"] for r in records if "chars_per_sec" in r]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHIPPED_TEXT), help="text to train on: a file or a Hub dataset id "
                        "(default: the repository's data/tinyshakespeare.txt)")
    parser.add_argument("--hidden-size", type=whole_number(1, 4096), default=512)
    parser.add_argument("--batch-size", type=whole_number(1, 4096), default=32)
    parser.add_argument("--seq-len", type=whole_number(1, 10_000), default=64)
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument("--window", type=whole_number(1, 10_000), default=5, help="steps per timed window")
    parser.add_argument("--windows", type=whole_number(2, 1000), default=6, help="timed windows (the first is warm-up)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: hidden 32, batch 4, seq 16")
    args = parser.parse_args(argv)
    if not 0 <= args.dropout < 1:
        parser.error(f"argument --dropout: must be in [0, 1), got {args.dropout}")
    if args.quick:
        args.hidden_size, args.batch_size, args.seq_len, args.window, args.windows = 32, 4, 16, 2, 3

    splits = load_text_splits(args.data)
    text = (splits.train + splits.validation + splits.test)[:CORPUS_CHARS]
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus.txt"
        corpus.write_text(text, encoding="utf-8")
        trained_splits = load_text_splits(str(corpus))
        tokenizer = CharTokenizer.from_text(trained_splits.train, trained_splits.validation, trained_splits.test)
        ids = torch.tensor(tokenizer.encode(trained_splits.train), dtype=torch.long)
        bare = bare_loop(ids, tokenizer.vocab_size, args, args.windows)
        ours = trainer_loop(corpus, args, args.windows, Path(scratch) / "run")

    bare_rate, our_rate = statistics.median(bare[1:]), statistics.median(ours[1:])
    print(f"2x{args.hidden_size} LSTM, batch {args.batch_size}, seq {args.seq_len}, dropout {args.dropout}, "
          f"{torch.get_num_threads()} threads; median of {args.windows - 1} windows of {args.window} steps")
    print("| loop | chars/s | ratio to bare |")
    print("|---|---:|---:|")
    print(f"| bare nn.LSTM loop | {bare_rate:,.0f} | 1.00 |")
    print(f"| python -m train (train()) | {our_rate:,.0f} | {our_rate / bare_rate:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
