"""Peak memory as the corpus grows, streamed and in memory: ``python -m benchmarks.streaming_memory``

The corpora are the shipped text repeated to 10 MB and to 100 MB (``--sizes``), written to a
temporary folder. For each, a fresh process reads one whole pass of the training text into
TBPTT batches (global batch 16 x 64, the trainer's defaults) and prints its peak resident memory:

* **streamed**: :class:`~rnn_demo.training.streaming.StreamedCorpus` and
  :class:`~rnn_demo.training.streaming.StreamedBatches`, the ``--streaming`` data path, batch after
  batch to the end of the corpus;
* **in memory**: what ``python -m train`` without ``--streaming`` does before its first step: the
  text read, split 90/5/5, encoded and cut into batches.

No model trains, so the figures are the data path's own (a training adds the model's memory, the
same in both).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import SHIPPED_TEXT
from rnn_demo.cli.arguments import finite_number

REPO_ROOT = Path(__file__).resolve().parents[1]
BATCH, SEQ_LEN = 16, 64

READ_STREAMED = """
import json, resource, sys, time
BATCH, SEQ_LEN = int(sys.argv[3]), int(sys.argv[4])
from rnn_demo.training.distributed import Ranks
from rnn_demo.training.streaming import StreamedBatches, StreamedCorpus
started = time.perf_counter()
corpus = StreamedCorpus(sys.argv[1], Ranks(), val_chars=100_000)
batches = StreamedBatches(corpus.rows(), corpus.table, BATCH, SEQ_LEN)
steps = int(sys.argv[2]) // (BATCH * SEQ_LEN)
for _ in range(steps):
    batches.next()
print(json.dumps({"chars": batches.chars_read, "seconds": time.perf_counter() - started,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

READ_IN_MEMORY = """
import json, resource, sys, time
BATCH, SEQ_LEN = int(sys.argv[3]), int(sys.argv[4])
import torch
from rnn_demo.model.tokenizer import CharTokenizer
from rnn_demo.training.data import TBPTTBatches, load_text_splits
started = time.perf_counter()
splits = load_text_splits(sys.argv[1])
tokenizer = CharTokenizer.from_text(splits.train, splits.validation, splits.test)
ids = torch.tensor(tokenizer.encode(splits.train), dtype=torch.long)
batches = TBPTTBatches(ids, BATCH, SEQ_LEN)
for index in range(len(batches)):
    batches[index]
print(json.dumps({"chars": len(splits.train), "seconds": time.perf_counter() - started,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def measure(script: str, corpus: Path, train_chars: int) -> dict:
    finished = subprocess.run([sys.executable, "-c", script, str(corpus), str(train_chars), str(BATCH), str(SEQ_LEN)],
                              cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise SystemExit(f"reading {corpus.name} failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=finite_number(0.1, 10_000), nargs="+", default=[10, 100],
                        help="corpus sizes in MB (default: 10 100)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: corpora of 1 and 2 MB")
    args = parser.parse_args(argv)
    sizes = [1, 2] if args.quick else args.sizes
    text = SHIPPED_TEXT.read_text(encoding="utf-8")

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            corpus = Path(scratch) / f"corpus-{size:g}mb.txt"
            target = int(size * 1_000_000)
            with open(corpus, "w", encoding="utf-8") as file:
                written = 0
                while written < target:
                    piece = text[: target - written]
                    file.write(piece)
                    written += len(piece)
            train_chars = written - 100_000  # the streamed run sets its validation text aside
            streamed = measure(READ_STREAMED, corpus, train_chars)
            in_memory = measure(READ_IN_MEMORY, corpus, train_chars)
            rows.append((size, streamed, in_memory))

    print(f"one pass over the training text in batches of {BATCH} x {SEQ_LEN}; peak RSS of a fresh process")
    print("| corpus | streamed peak RSS | streamed chars/s | in memory peak RSS | in memory chars/s |")
    print("|---:|---:|---:|---:|---:|")
    for size, streamed, in_memory in rows:
        print(f"| {size:g} MB | {streamed['peak_kib'] / 1024:,.0f} MiB | {streamed['chars'] / streamed['seconds']:,.0f} "
              f"| {in_memory['peak_kib'] / 1024:,.0f} MiB | {in_memory['chars'] / in_memory['seconds']:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
