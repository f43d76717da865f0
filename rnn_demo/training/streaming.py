"""Corpora larger than memory: ``--streaming`` reads the text through 🤗 ``datasets`` streaming.

The corpus is an ``IterableDataset`` of text rows (``keep_linebreaks=True``, so a line keeps its
newline), sharded among the ranks with ``datasets.distributed.split_dataset_by_node``: by shards
(files) when their number divides among the ranks, otherwise every rank keeps one row in N. Each
rank cuts its share into blocks of :data:`BLOCK_CHARS` characters, dealt to its streams in turn
(block k to stream k mod streams), so every stream reads contiguous text and jumps once a block,
and no more than about two blocks per stream are ever held.

Policies, written into ``metrics.json``:

* **Vocabulary**, fixed before training: the characters of ``--vocab-from FILE``, or of the first
  ``--vocab-mb`` megabytes of the corpus and its validation text. Characters outside it are
  skipped, as a prompt's unknown characters are, and counted (``chars_outside_vocabulary``).
* **Validation**: the first ``--val-chars`` characters of the corpus's validation split when it has
  one; otherwise the first ``--val-chars`` characters of the corpus (in whole rows, from its first
  shard) are set aside, and no rank trains on them. The test split, when there is one, is read the
  same way; without one there is no test loss.
* **Epochs**: a rank that reaches the end of its share starts it again; the ranks never wait for
  each other's data, so they always take the same number of steps.
* **Resume**: the stream position is a pure function of the step, so ``--resume`` reads each rank's
  share again up to that step (time, not memory).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import numpy as np
import torch

from rnn_demo.model.tokenizer import CharTokenizer
from rnn_demo.training.data import DataLoadError, _hub_reachable, _looks_like_repo_id, _offline_message, load_dataset
from rnn_demo.training.distributed import Ranks

BLOCK_CHARS = 1 << 16  # a stream jumps to a new place in the corpus once every this many characters
MEGABYTE = 1 << 20


def _load_streaming(source: str):
    """The corpus's splits as ``IterableDataset`` s: a text file, a folder of data files (laid out
    like a Hub dataset repository), or a Hub dataset id."""
    import datasets

    if os.path.isfile(source):
        try:
            train = datasets.load_dataset(
                "text", data_files=[source], split="train", streaming=True, keep_linebreaks=True
            )
        except Exception as error:
            raise DataLoadError(f"Could not read {source} as a text stream: {error}") from None
        return {"train": train}
    if not os.path.isdir(source):
        if not _looks_like_repo_id(source):
            raise DataLoadError(f"{source} is not a text file, a folder or a Hub dataset id (no such file)")
        if not _hub_reachable():
            raise DataLoadError(_offline_message(source, "no connection to the Hub"))
    try:  # text files: each line is a row, and keeps its newline
        loaded = load_dataset(source, streaming=True, keep_linebreaks=True)
    except DataLoadError as error:
        if "keep_linebreaks" not in str(error):
            raise
        loaded = load_dataset(source, streaming=True)  # parquet, json...: rows as they are
    return dict(loaded)


class CharacterTable:
    """Text to ids with NumPy, one lookup per code point; characters outside the vocabulary are
    dropped and counted."""

    def __init__(self, tokenizer: CharTokenizer):
        points = [ord(c) for c in tokenizer.vocab]
        self.table = np.full(max(points) + 2, -1, dtype=np.int64)  # the last entry: every higher code point
        self.table[points] = np.arange(len(points))

    def encode(self, text: str) -> tuple[np.ndarray, int]:
        """(ids of the known characters, how many characters were dropped)."""
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = self.table[np.minimum(points, len(self.table) - 1)]
        known = ids[ids >= 0]
        return known, len(ids) - len(known)


class StreamedCorpus:
    """A streamed corpus as one rank sees it: the vocabulary, the validation and test text, and
    this rank's share of the training rows (:meth:`rows`)."""

    def __init__(
        self,
        source: str,
        ranks: Ranks,
        text_column: str = "text",
        val_chars: int = 100_000,
        vocab_from: str | None = None,
        vocab_mb: float = 1.0,
    ):
        self.source = source
        self.ranks = ranks
        self.text_column = text_column
        splits = _load_streaming(source)
        if "train" not in splits:
            raise DataLoadError(f"{source!r} has no train split to stream; it has {sorted(splits)}")
        self.train = splits["train"]
        self.set_aside_rows = 0
        if "validation" in splits:
            self.validation_text, _ = self._first_chars(splits["validation"], val_chars)
            self.validation_from = "the validation split"
        else:
            first_shard = self.train.shard(num_shards=self.train.num_shards, index=0)
            self.validation_text, self.set_aside_rows = self._first_chars(first_shard, val_chars)
            self.validation_from = f"the first {len(self.validation_text):,} characters of the corpus, set aside"
        if len(self.validation_text) < 2:
            raise DataLoadError(f"{source!r} gives no validation text (need --val-chars of at least 2 characters)")
        self.test_text = self._first_chars(splits["test"], val_chars)[0] if "test" in splits else None
        self.vocabulary_from = vocab_from or f"the first {vocab_mb:g} MB of the corpus"
        self.tokenizer = self._vocabulary(vocab_from, vocab_mb)
        self.table = CharacterTable(self.tokenizer)
        self.strategy = "shards" if self.train.num_shards % ranks.world_size == 0 else "examples"

    def _texts(self, dataset) -> Iterator[str]:
        for row in dataset:
            if self.text_column not in row:
                raise DataLoadError(
                    f"{self.source!r} has no column {self.text_column!r}; its columns are {sorted(row)}. "
                    "Choose one with --text-column."
                )
            text = row[self.text_column]
            if not isinstance(text, str):
                raise DataLoadError(f"Column {self.text_column!r} of {self.source!r} does not hold text")
            yield text

    def _first_chars(self, dataset, chars: int) -> tuple[str, int]:
        """The first ``chars`` characters of ``dataset``, and the number of rows they were cut from."""
        parts, length, rows = [], 0, 0
        for text in self._texts(dataset):
            if length >= chars:
                break
            parts.append(text)
            length += len(text)
            rows += 1
        return "".join(parts)[:chars], rows

    def _vocabulary(self, vocab_from: str | None, vocab_mb: float) -> CharTokenizer:
        if vocab_from is not None:
            try:
                with open(vocab_from, encoding="utf-8", newline="") as file:
                    sample = file.read()
            except (OSError, UnicodeDecodeError) as error:
                raise DataLoadError(f"--vocab-from: could not read {vocab_from} as UTF-8 text: {error}") from None
            if not sample:
                raise DataLoadError(f"--vocab-from: {vocab_from} is empty")
            self.sample_text = sample[: int(vocab_mb * MEGABYTE)]
            return CharTokenizer.from_text(sample)
        self.sample_text, _ = self._first_chars(self.train, int(vocab_mb * MEGABYTE))
        return CharTokenizer.from_text(self.sample_text, self.validation_text)

    def encode(self, text: str) -> torch.Tensor:
        ids, _ = self.table.encode(text)
        return torch.from_numpy(ids)

    def _set_aside_rows_of_rank(self) -> int:
        """How many of this rank's first rows are the validation text set aside."""
        if self.set_aside_rows == 0:
            return 0
        if self.strategy == "shards":  # rank 0's first shard is shard 0, where the set-aside rows are
            return self.set_aside_rows if self.ranks.rank == 0 else 0
        # one row in N: rank r holds rows r, r + N, ... of the whole corpus
        return max(0, -(-(self.set_aside_rows - self.ranks.rank) // self.ranks.world_size))

    def rows(self) -> Iterator[str]:
        """This rank's share of the training text, row by row, started again at its end."""
        from datasets.distributed import split_dataset_by_node

        share = self.train
        if self.ranks.distributed:
            share = split_dataset_by_node(
                self.train, rank=self.ranks.rank, world_size=self.ranks.world_size, strategy=self.strategy
            )
        skip = self._set_aside_rows_of_rank()
        while True:
            read = 0
            for text in itertools.islice(self._texts(share), skip, None):
                read += len(text)
                yield text
            if read == 0:
                raise DataLoadError(
                    f"rank {self.ranks.rank} of {self.ranks.world_size} got no training text from {self.source!r}"
                    + (" after the validation text was set aside: lower --val-chars" if skip else "")
                )

    def describe(self) -> dict:
        return {
            "source": self.source,
            "streaming": True,
            "shards": self.train.num_shards,
            "split_by_node": self.strategy if self.ranks.distributed else None,
            "validation": len(self.validation_text),
            "validation_from": self.validation_from,
            "test": len(self.test_text) if self.test_text is not None else None,
            "vocabulary_from": self.vocabulary_from,
        }


class StreamedBatches:
    """TBPTT batches of ``streams`` rows from a stream of text rows, never held whole.

    Window i of stream b continues window i-1 of stream b (the carried state reads on), except
    where the stream moves to its next block. Batch i is a pure function of i, so a resumed run
    reads to its step again with :meth:`skip`.
    """

    def __init__(self, rows: Iterator[str], table: CharacterTable, streams: int, seq_len: int,
                 block_chars: int = BLOCK_CHARS):
        if streams <= 0 or seq_len <= 0:
            raise ValueError("streams and seq_len must be positive")
        self.rows = rows
        self.table = table
        self.streams = streams
        self.seq_len = seq_len
        self.block_chars = block_chars
        self.buffers = [np.empty(0, dtype=np.int64) for _ in range(streams)]
        self.next_owner = 0  # the stream the next block goes to
        self.pending = np.empty(0, dtype=np.int64)  # ids read but not yet dealt
        self.chars_read = 0
        self.chars_outside_vocabulary = 0

    def _deal_block(self) -> None:
        while len(self.pending) < self.block_chars:
            texts, length = [], 0
            for text in self.rows:  # join rows into one encoding call: rows are often single lines
                texts.append(text)
                length += len(text)
                if length >= self.block_chars:
                    break
            ids, dropped = self.table.encode("".join(texts))
            self.chars_read += length
            self.chars_outside_vocabulary += dropped
            if self.chars_outside_vocabulary == self.chars_read and self.chars_read > 16 * self.block_chars:
                raise DataLoadError(
                    f"None of the first {self.chars_read:,} characters of the corpus is in the vocabulary "
                    "(--vocab-from gives other characters than the text has)"
                )
            self.pending = np.concatenate([self.pending, ids])
        block, self.pending = self.pending[: self.block_chars], self.pending[self.block_chars :]
        owner = self.next_owner
        self.buffers[owner] = np.concatenate([self.buffers[owner], block])
        self.next_owner = (owner + 1) % self.streams

    def _take(self) -> np.ndarray:
        """(streams, seq_len + 1) ids: each stream's next window and the character after it."""
        need = self.seq_len + 1
        while min(len(buffer) for buffer in self.buffers) < need:
            self._deal_block()
        window = np.stack([buffer[:need] for buffer in self.buffers])
        # views: a stream's array is replaced, and the consumed part freed, when its next block comes
        self.buffers = [buffer[self.seq_len :] for buffer in self.buffers]
        return window

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        window = torch.from_numpy(self._take())
        return window[:, :-1], window[:, 1:]

    def close(self) -> None:
        """Let go of the stream (its reader's generators end now, not at interpreter exit)."""
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()

    def skip(self, steps: int) -> None:
        """Read past ``steps`` batches (``--resume``)."""
        for _ in range(steps):
            self._take()
