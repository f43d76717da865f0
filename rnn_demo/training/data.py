"""Text in, batches out: loading a dataset (Hub or local file) and cutting it for truncated BPTT.

A folder of ``train.txt``/``validation.txt``/``test.txt`` files (gzipped or not, like ``data/tang``)
is read directly, one split per file. A Hub dataset id (default ``karpathy/tiny_shakespeare``) or
another local dataset folder goes through 🤗 ``datasets``; a local text file is read as it is, one
document. A local file, or a Hub dataset with a single split, is cut like the Hub's tiny
shakespeare: the first 90% of the characters for training, the next 5% for validation and the
last 5% for test. On tiny shakespeare that reproduces the Hub splits exactly
(1,003,854 / 55,770 / 55,770 characters), so figures agree whichever source was used.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

import torch

DEFAULT_DATASET = "karpathy/tiny_shakespeare"
SPLITS = ("train", "validation", "test")
TEXT_FILE_SUFFIXES = (".txt", ".md", ".text", ".csv", ".json", ".jsonl")


class DataLoadError(RuntimeError):
    """The text could not be loaded; the message says why and what to do instead."""


@dataclass(frozen=True)
class TextSplits:
    """The three splits of a text corpus, each one string read as a single stream."""

    train: str
    validation: str
    test: str
    source: str  # the dataset id or file the text came from

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLITS}


def split_text(text: str) -> tuple[str, str, str]:
    """First 90% / next 5% / last 5% of the characters (validation and test share the rest equally)."""
    if len(text) < 3:
        raise DataLoadError(f"The text has {len(text)} characters; at least 3 are needed to make three splits")
    train_end = int(len(text) * 0.9)
    validation_end = train_end + (len(text) - train_end) // 2
    return text[:train_end], text[train_end:validation_end], text[validation_end:]


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connection to the Hub endpoint, so that being offline costs seconds, not 23."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return True  # offline mode: let datasets answer from its cache or fail at once itself
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_message(source: str, reason: str) -> str:
    return (
        f"Could not load the dataset {source!r} from the Hugging Face Hub ({reason}). "
        "To train offline, pass a local text file instead, e.g. --data data/tinyshakespeare.txt "
        "(the same text, shipped with the repository)."
    )


def _join_rows(dataset, text_column: str, source: str, split: str) -> str:
    if text_column not in dataset.column_names:
        raise DataLoadError(
            f"Split {split!r} of {source!r} has no column {text_column!r}; "
            f"its columns are {dataset.column_names}. Choose one with --text-column."
        )
    rows = dataset[text_column]
    if not all(isinstance(row, str) for row in rows):
        raise DataLoadError(f"Column {text_column!r} of {source!r} does not hold text")
    # One row is one document (tiny shakespeare is a single row); many rows become lines.
    return "\n".join(rows)


def load_text_splits(source: str = DEFAULT_DATASET, text_column: str = "text", split: str | None = None) -> TextSplits:
    """Load ``source`` (a local text file or a Hub dataset id) as train/validation/test text.

    Args:
        source: path of a local text file, a dataset id on the Hugging Face Hub, a local folder
            holding ``train.txt``, ``validation.txt`` and ``test.txt`` (each may be ``.txt.gz``),
            read as the three splits as they are, or a local folder laid out like a Hub dataset
            repo (data files per split).
        text_column: the column holding the text (Hub datasets).
        split: take the text from this split alone and cut it 90/5/5. By default a dataset
            with train/validation/test splits is used as it is, and one with only some of them
            has its train split (or its only split) cut 90/5/5.
    """
    if os.path.isdir(source) and (files := _split_files(source)) is not None:
        return TextSplits(*(_read_text_file(path) for path in files), source=source)
    if os.path.isdir(source):  # a dataset saved as a folder of data files, read like a Hub repo
        return _splits_from_dataset(load_dataset(source), source, text_column, split)
    if os.path.exists(source) or not _looks_like_repo_id(source):
        if not os.path.isfile(source):
            raise DataLoadError(f"{source} is not a text file (no such file)")
        # A plain text file is one document: read it as it is (newlines kept), no dataset cache.
        train, validation, test = split_text(_read_text_file(source))
        return TextSplits(train, validation, test, source=source)

    if not _hub_reachable():
        raise DataLoadError(_offline_message(source, "no connection to the Hub"))
    return _splits_from_dataset(load_dataset(source), source, text_column, split)


def _split_files(folder: str) -> list[str] | None:
    """The folder's train/validation/test text files (``NAME.txt`` or ``NAME.txt.gz``), or None if one is missing."""
    files = []
    for name in SPLITS:
        found = [path for path in (os.path.join(folder, f"{name}.txt{suffix}") for suffix in ("", ".gz"))
                 if os.path.isfile(path)]
        if not found:
            return None
        files.append(found[0])
    return files


def _read_text_file(path: str) -> str:
    """A split file read whole, newlines as they are; gzip-compressed when its name ends in .gz."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8", newline="") as file:
                return file.read()
        with open(path, encoding="utf-8", newline="") as file:
            return file.read()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DataLoadError(f"Could not read {path} as UTF-8 text: {error}") from None


def load_dataset(source: str, **options):
    """``datasets.load_dataset(source, **options)``, its failures told as :class:`DataLoadError`."""
    import datasets

    try:
        return datasets.load_dataset(source, **options)
    except (ConnectionError, TimeoutError) as error:
        raise DataLoadError(_offline_message(source, type(error).__name__)) from None
    except FileNotFoundError as error:  # includes datasets' DatasetNotFoundError
        raise DataLoadError(
            f"Dataset {source!r} was not found on the Hub, or is gated ({error}). "
            "Check the id, or pass a local text file with --data path/to/text.txt."
        ) from None
    except Exception as error:
        raise DataLoadError(f"Could not load the dataset {source!r}: {error}") from None


def _splits_from_dataset(loaded, source: str, text_column: str, split: str | None) -> TextSplits:
    available = list(loaded.keys())
    if split is not None:
        if split not in loaded:
            raise DataLoadError(f"{source!r} has no split {split!r}; it has {available}")
        return TextSplits(*split_text(_join_rows(loaded[split], text_column, source, split)), source=source)
    if all(name in loaded for name in SPLITS):
        texts = [_join_rows(loaded[name], text_column, source, name) for name in SPLITS]
        return TextSplits(*texts, source=source)
    name = "train" if "train" in loaded else available[0]
    return TextSplits(*split_text(_join_rows(loaded[name], text_column, source, name)), source=source)


def _looks_like_repo_id(source: str) -> bool:
    """``name`` or ``owner/name`` and not a file name: read as a Hub id unless such a file exists."""
    return (
        re.fullmatch(r"[\w.-]+(/[\w.-]+)?", source) is not None
        and not source.startswith(".")
        and not source.endswith(TEXT_FILE_SUFFIXES)
    )


class TBPTTBatches:
    """Batches for truncated backpropagation through time.

    The token ids are cut into ``batch_size`` contiguous streams of equal length; batch i of
    an epoch is the i-th window of ``seq_len`` steps from every stream, so row b of batch i+1
    continues row b of batch i and the hidden state can be carried (detached) between them.

    Batch i of an epoch is a pure function of i, so the data position of a run is just its
    step count (see :meth:`position`).
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_len: int):
        if ids.dim() != 1:
            raise ValueError("ids must be a 1-D tensor of token ids")
        if batch_size <= 0 or seq_len <= 0:
            raise ValueError("batch_size and seq_len must be positive")
        stream_length = (len(ids) - 1) // batch_size
        if stream_length < 1:
            raise ValueError(
                f"{len(ids)} tokens are too few for batch size {batch_size}: each stream needs at least 2"
            )
        self.batch_size = batch_size
        self.seq_len = seq_len
        used = stream_length * batch_size
        self.inputs = ids[:used].view(batch_size, stream_length)  # (B, N)
        self.targets = ids[1 : used + 1].view(batch_size, stream_length)  # (B, N)
        self.stream_length = stream_length

    def __len__(self) -> int:
        """Batches per epoch (the last window of an epoch may be shorter than seq_len)."""
        return -(-self.stream_length // self.seq_len)

    @property
    def chars_per_epoch(self) -> int:
        return self.stream_length * self.batch_size

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch index within the epoch) of global step ``step``."""
        return divmod(step, len(self))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (batch_size, <= seq_len) of window ``index`` of an epoch."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range 0..{len(self) - 1}")
        start = index * self.seq_len
        end = start + self.seq_len
        return self.inputs[:, start:end], self.targets[:, start:end]

    def to(self, device) -> TBPTTBatches:
        self.inputs = self.inputs.to(device)
        self.targets = self.targets.to(device)
        return self
