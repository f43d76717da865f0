"""What a training run depends on: :class:`TrainConfig`, one field per ``python -m train`` flag."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from rnn_demo.training.data import DEFAULT_DATASET

# Fields of TrainConfig that define the network; a resumed run must not change them.
MODEL_FIELDS = (
    "cell",
    "hidden_size",
    "num_layers",
    "dropout",
    "embedding_dim",
    "tie_weights",
    "weight_drop",
    "embedding_dropout",
    "variational_dropout",
)


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message says why."""


def _option(default, help: str):
    """A config field with its command-line help text (the CLI is generated from the fields)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything a training run depends on (the CLI flags, one field each)."""

    data: str = _option(DEFAULT_DATASET, "Hugging Face dataset id, a local text file, or a local dataset folder")
    text_column: str = _option("text", "column holding the text (Hub datasets)")
    split: str | None = _option(None, "take the text from this split only and cut it 90/5/5 (default: the dataset's own splits)")
    streaming: bool = _option(False, "read --data as a stream through datasets, never whole in memory (corpora larger than memory)")
    vocab_from: str | None = _option(None, "with --streaming: the vocabulary is this text file's characters")
    vocab_mb: float = _option(1.0, "with --streaming and no --vocab-from: the vocabulary is the characters of the corpus's first N MB")
    val_chars: int = _option(100_000, "with --streaming: validation characters, from the validation split or set aside from the start")
    cell: str = _option("lstm", "recurrent cell: rnn (the hand-written RNN), gru or lstm")
    hidden_size: int = _option(256, "features in each layer's hidden state")
    num_layers: int = _option(2, "stacked recurrent layers")
    dropout: float = _option(0.0, "dropout on embeddings, between layers and before the output layer")
    embedding_dim: int | None = _option(None, "character embedding size (default: the hidden size)")
    tie_weights: bool = _option(False, "share the embedding matrix with the output layer")
    weight_drop: float = _option(0.0, "DropConnect on the hidden-to-hidden weights (AWD-LSTM's weight drop)")
    embedding_dropout: float = _option(0.0, "drop this fraction of the characters' embedding vectors")
    variational_dropout: bool = _option(False, "one dropout mask per sequence for all time steps (embeddings, output)")
    # Defaults tuned for a 2-core CPU: small batches give more updates per second of compute.
    seq_len: int = _option(64, "truncated-BPTT window: characters backpropagated through per step")
    batch_size: int = _option(16, "parallel streams of text per step, over all ranks under torchrun")
    grad_accum: int = _option(1, "split each rank's streams into this many micro-batches, gradients accumulated (less memory, same step)")
    lr: float = _option(3e-3, "peak learning rate (AdamW)")
    min_lr_ratio: float = _option(0.1, "final learning rate as a fraction of --lr (cosine decay)")
    warmup_steps: int = _option(50, "steps of linear learning-rate warmup")
    weight_decay: float = _option(0.0, "AdamW weight decay on weight matrices")
    grad_clip: float = _option(1.0, "clip the gradient norm to this (0 = off)")
    max_steps: int | None = _option(None, "stop after this many optimisation steps")
    time_budget: float | None = _option(None, "stop after this many seconds of training (evaluation time excluded)")
    wall_budget: float | None = _option(
        None,
        "end the whole run within about this many seconds of wall time, data loading, evaluations and the final "
        "metrics included (the page's trainings); each evaluation then reads only as much of the validation and "
        "test text as it can afford",
    )
    eval_every: int = _option(500, "evaluate on the whole validation split every N steps (and at the end)")
    log_every: int = _option(50, "write the training loss to metrics.jsonl every N steps")
    patience: int | None = _option(None, "stop after N evaluations without a new best validation loss")
    average_after: float | None = _option(
        None, "from this fraction of the schedule on (0-1), average the weights; evaluate and keep the average"
    )
    seed: int = _option(0, "random seed (weights, dropout, everything)")
    device: str = _option("auto", "auto (CUDA when available), cpu or cuda")
    dist_timeout: float = _option(300.0, "under torchrun: seconds a rank waits for the others before the run ends with an error")

    def validate(self) -> None:
        positive_ints = ["hidden_size", "num_layers", "seq_len", "batch_size", "grad_accum", "eval_every", "log_every",
                         "val_chars"]
        for name in positive_ints + ["max_steps", "patience", "embedding_dim"]:
            value = getattr(self, name)
            if value is None and name not in positive_ints:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise TrainingError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        for name in ("lr", "weight_decay", "grad_clip", "min_lr_ratio", "dropout", "weight_drop", "embedding_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise TrainingError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value!r}")
        if self.lr == 0:
            raise TrainingError("--lr must be > 0")
        for name in ("dropout", "weight_drop", "embedding_dropout"):
            if getattr(self, name) >= 1:
                raise TrainingError(f"--{name.replace('_', '-')} must be < 1, got {getattr(self, name)!r}")
        if self.min_lr_ratio > 1:
            raise TrainingError(f"--min-lr-ratio must be <= 1, got {self.min_lr_ratio!r}")
        if self.average_after is not None and not (math.isfinite(self.average_after) and 0 <= self.average_after < 1):
            raise TrainingError(f"--average-after must be a fraction in [0, 1), got {self.average_after!r}")
        if self.warmup_steps < 0:
            raise TrainingError("--warmup-steps must be >= 0")
        for name in ("time_budget", "wall_budget"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise TrainingError(f"--{name.replace('_', '-')} must be a positive number of seconds, got {value!r}")
        if self.max_steps is None and self.time_budget is None and self.wall_budget is None:
            raise TrainingError("Give --max-steps, --time-budget or --wall-budget (or several) to say when training stops")
        for name in ("vocab_mb", "dist_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise TrainingError(f"--{name.replace('_', '-')} must be a positive number, got {value!r}")
        if self.streaming and self.split is not None:
            raise TrainingError("--split cannot be combined with --streaming (a stream has no 90/5/5 cut)")
        if self.vocab_from is not None and not self.streaming:
            raise TrainingError("--vocab-from needs --streaming (in memory the vocabulary is the whole text's)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise TrainingError(f"--device must be auto, cpu or cuda, got {self.device!r}")

    def model_kwargs(self) -> dict:
        return {name: getattr(self, name) for name in MODEL_FIELDS}


# What a run saved before a model field existed used: that field's default.
MODEL_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in MODEL_FIELDS}


