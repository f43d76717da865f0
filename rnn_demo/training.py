"""Training a CharRNN, as importable functions (the CLI in ``train/`` only parses flags).

Pieces a test (or a DDP wrapper) can drive on their own:

* :func:`train_step` - one optimisation step on one TBPTT batch, returning the loss and the
  detached state to carry into the next batch;
* :func:`evaluate` - mean loss (nats/char) over a whole split read as one stream, state carried;
* :func:`learning_rate` - warmup, then cosine decay over steps or over the time budget;
* :class:`RunFolder` - the ``--out`` folder: best model (a ``save_pretrained`` folder), the
  resumable training state, the metrics log and the loss curve, every write atomic;
* :func:`train` - the loop that ties them together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from rnn_demo.data import DEFAULT_DATASET, TBPTTBatches, load_text_splits
from rnn_demo.files import WriteError, atomic_path, atomic_write_text, remove_stale_temporaries, replace_files_from
from rnn_demo.model import CharRNN, CheckpointError, Hidden, bits_per_char
from rnn_demo.tokenizer import CharTokenizer

STATE_NAME = "training_state.safetensors"
LOG_NAME = "metrics.jsonl"
METRICS_NAME = "metrics.json"
CURVE_NAME = "loss_curve.png"
STATE_FORMAT = "rnn-demo-training-state/1"
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
    batch_size: int = _option(16, "parallel streams of text per step")
    lr: float = _option(3e-3, "peak learning rate (AdamW)")
    min_lr_ratio: float = _option(0.1, "final learning rate as a fraction of --lr (cosine decay)")
    warmup_steps: int = _option(50, "steps of linear learning-rate warmup")
    weight_decay: float = _option(0.0, "AdamW weight decay on weight matrices")
    grad_clip: float = _option(1.0, "clip the gradient norm to this (0 = off)")
    max_steps: int | None = _option(None, "stop after this many optimisation steps")
    time_budget: float | None = _option(None, "stop after this many seconds of training (evaluation time excluded)")
    eval_every: int = _option(500, "evaluate on the whole validation split every N steps (and at the end)")
    log_every: int = _option(50, "write the training loss to metrics.jsonl every N steps")
    patience: int | None = _option(None, "stop after N evaluations without a new best validation loss")
    average_after: float | None = _option(
        None, "from this fraction of the schedule on (0-1), average the weights; evaluate and keep the average"
    )
    seed: int = _option(0, "random seed (weights, dropout, everything)")
    device: str = _option("auto", "auto (CUDA when available), cpu or cuda")

    def validate(self) -> None:
        positive_ints = ["hidden_size", "num_layers", "seq_len", "batch_size", "eval_every", "log_every"]
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
        if self.time_budget is not None and (not math.isfinite(self.time_budget) or self.time_budget <= 0):
            raise TrainingError(f"--time-budget must be a positive number of seconds, got {self.time_budget!r}")
        if self.max_steps is None and self.time_budget is None:
            raise TrainingError("Give --max-steps or --time-budget (or both) to say when training stops")
        if self.device not in ("auto", "cpu", "cuda"):
            raise TrainingError(f"--device must be auto, cpu or cuda, got {self.device!r}")

    def model_kwargs(self) -> dict:
        return {name: getattr(self, name) for name in MODEL_FIELDS}


# What a run saved before a model field existed used: that field's default.
MODEL_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in MODEL_FIELDS}


# ---- the pure pieces ------------------------------------------------------------------------


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but torch sees no CUDA GPU (use --device cpu or auto)")
    return torch.device(name)


def detach_hidden(hidden: Hidden) -> Hidden:
    """Cut the graph behind the carried state (truncated BPTT)."""
    if isinstance(hidden, tuple):
        return tuple(h.detach() for h in hidden)
    return hidden.detach()


def make_optimizer(model: CharRNN, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (biases and LayerNorm-like vectors are left alone)."""
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": matrices, "weight_decay": config.weight_decay},
        {"params": vectors, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))


def schedule_progress(config: TrainConfig, step: int, train_seconds: float) -> float:
    """How far the run is, 0 to 1: the larger of step / max_steps and train_seconds / time_budget,
    so a run with a time budget still ends its schedule when its time runs out."""
    progress = 0.0
    if config.max_steps:
        progress = max(progress, step / config.max_steps)
    if config.time_budget:
        progress = max(progress, train_seconds / config.time_budget)
    return min(progress, 1.0)


def learning_rate(config: TrainConfig, step: int, train_seconds: float) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``lr * min_lr_ratio``."""
    progress = schedule_progress(config, step, train_seconds)
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr * warmup * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


def train_step(
    model: CharRNN,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    hidden: Hidden | None,
    grad_clip: float = 0.0,
) -> tuple[torch.Tensor, Hidden]:
    """One step on a batch (B, T): returns the loss (nats/char, a 0-dim tensor) and the detached state."""
    model.train()
    logits, hidden = model(inputs, hidden)  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach(), detach_hidden(hidden)


@contextlib.contextmanager
def _full_float32(device: torch.device):
    """On a GPU, cuDNN's recurrent kernels use TF32 by default (about 10 mantissa bits); reported
    losses are measured in full float32 so that a CPU re-evaluation agrees with them."""
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    allowed = cudnn.allow_tf32
    cudnn.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32 = allowed


@torch.inference_mode()
def evaluate(model: CharRNN, ids: torch.Tensor, streams: int = 1, chunk_len: int = 2048) -> float:
    """Mean cross-entropy (nats/char) of predicting each next id of ``ids``.

    With ``streams=1`` the split is one stream: every character is predicted from all the
    text before it (state carried across chunks). ``streams > 1`` cuts it into that many
    contiguous streams read in parallel (faster, slightly less context at each cut).
    """
    was_training = model.training
    model.eval()
    try:
        device = model.decoder.weight.device
        length = (len(ids) - 1) // streams
        if length < 1:
            raise ValueError(f"{len(ids)} ids are too few to evaluate in {streams} streams")
        inputs = ids[: length * streams].view(streams, length).to(device)  # (S, N)
        targets = ids[1 : length * streams + 1].view(streams, length).to(device)
        hidden = None
        total = torch.zeros((), dtype=torch.float64, device=device)
        with _full_float32(device):
            for start in range(0, length, chunk_len):
                logits, hidden = model(inputs[:, start : start + chunk_len], hidden)
                chunk_targets = targets[:, start : start + chunk_len]
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk_targets.reshape(-1), reduction="sum")
                total += loss
        return float(total) / (length * streams)
    finally:
        model.train(was_training)


def unigram_loss(train_ids: torch.Tensor, eval_ids: torch.Tensor, vocab_size: int) -> float:
    """Loss (nats/char) of the best context-free model: training-set character frequencies
    (add-one smoothed). Any useful model must beat it by a wide margin."""
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1.0
    log_probs = (counts / counts.sum()).log()
    return float(-log_probs[eval_ids[1:]].mean())


class WeightAverage:
    """A running mean of the model's parameters over the steps since it started (Polyak
    averaging, the way AWD-LSTM ends training with averaged SGD).

    ``update`` after each optimizer step; ``swapped_in`` puts the average into the model for
    evaluation or saving and restores the trained weights afterwards.
    """

    def __init__(self, model: CharRNN):
        self.parameters = list(model.parameters())  # tied weights appear once
        self.average: list[torch.Tensor] | None = None
        self.count = 0

    @property
    def active(self) -> bool:
        return self.average is not None

    @torch.no_grad()
    def update(self) -> None:
        current = [p.detach() for p in self.parameters]
        if self.average is None:
            self.average = [p.clone() for p in current]
            self.count = 1
            return
        self.count += 1
        torch._foreach_lerp_(self.average, current, 1.0 / self.count)

    @contextlib.contextmanager
    def swapped_in(self):
        if self.average is None:
            yield
            return
        with torch.no_grad():
            trained = [p.detach().clone() for p in self.parameters]
            for parameter, average in zip(self.parameters, self.average):
                parameter.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, weights in zip(self.parameters, trained):
                    parameter.copy_(weights)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        if self.average is None:
            return {}
        return {f"average.{i}": a.contiguous() for i, a in enumerate(self.average)}

    def load_state(self, tensors: dict[str, torch.Tensor], count: int) -> None:
        if count <= 0:
            return
        try:
            average = [tensors[f"average.{i}"] for i in range(len(self.parameters))]
        except KeyError as error:
            raise CheckpointError(f"the training state lacks the weight average ({error})") from None
        self.average = [a.to(p.device, p.dtype) for a, p in zip(average, self.parameters)]
        self.count = count


# ---- the run folder ---------------------------------------------------------------------


def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors (for safetensors) and the JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for index, per_param in state_dict["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"scalars": scalars, "param_groups": state_dict["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, values in rest["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": rest["param_groups"]}


def _hidden_tensors(hidden: Hidden | None) -> dict[str, torch.Tensor]:
    if hidden is None:
        return {}
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    return {f"hidden.{i}": h.contiguous() for i, h in enumerate(parts)}


def _hidden_from(tensors: dict[str, torch.Tensor], device) -> Hidden | None:
    parts = [tensors[f"hidden.{i}"].to(device) for i in range(2) if f"hidden.{i}" in tensors]
    if not parts:
        return None
    return tuple(parts) if len(parts) == 2 else parts[0]


@dataclass
class Progress:
    """Where a run is; saved with the training state so ``--resume`` continues exactly."""

    step: int = 0
    chars_seen: int = 0
    train_seconds: float = 0.0
    best_val_loss: float = math.inf
    best_step: int = 0
    evals_without_improvement: int = 0
    last_train_loss: float | None = None  # mean over the last logging window
    averaged_steps: int = 0  # steps in the weight average (--average-after)


class RunFolder:
    """The ``--out`` folder of a run.

    It holds the best model so far as a ``save_pretrained`` folder (``CharRNN.from_pretrained``
    loads the folder itself), ``training_state.safetensors`` (last weights, optimizer, RNG,
    carried state and progress, what ``--resume`` needs), ``metrics.jsonl`` (the log),
    ``loss_curve.png`` and, at the end, ``metrics.json``. Every file is replaced atomically.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def state_path(self) -> Path:
        return self.path / STATE_NAME

    @property
    def log_path(self) -> Path:
        return self.path / LOG_NAME

    def prepare(self, resume: bool) -> None:
        if resume:
            if not self.state_path.is_file():
                raise TrainingError(f"--resume: {self.state_path} does not exist; nothing to resume")
        elif self.state_path.exists():
            raise TrainingError(
                f"{self.path} already holds a training run. Pass --resume to continue it, "
                "or choose another --out (nothing was overwritten)."
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TrainingError(f"Cannot create the output folder {self.path}: {error}") from None
        remove_stale_temporaries(self.path)

    def save_best(self, model: CharRNN) -> None:
        """Write the model as a ``save_pretrained`` folder into ``path``, file by file atomically."""
        from safetensors import SafetensorError

        staging = None
        try:
            staging = Path(tempfile.mkdtemp(prefix=".best-model.", suffix=".tmp", dir=self.path))
            model.save_pretrained(staging)
            # The weights go last: until they are in place the old (matching) ones stay.
            replace_files_from(staging, self.path, order=["config.json", "README.md", "model.safetensors"])
        except (OSError, SafetensorError) as error:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            raise WriteError(getattr(error, "errno", None), f"Could not save the model to {self.path}: {error}",
                             self.path) from error

    def save_state(
        self,
        model: CharRNN,
        optimizer: torch.optim.Optimizer,
        hidden: Hidden | None,
        progress: Progress,
        config: TrainConfig,
        average: WeightAverage | None = None,
    ) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import save_file

        tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
        # Tied weights appear under two names; safetensors refuses shared storage.
        if model.tie_weights:
            tensors.pop("model.decoder.weight", None)
        optimizer_tensors, optimizer_rest = _flatten_optimizer(optimizer.state_dict())
        tensors.update({k: v.contiguous() for k, v in optimizer_tensors.items()})
        tensors.update(_hidden_tensors(hidden))
        if average is not None:
            tensors.update(average.state_tensors())
        tensors["rng.cpu"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        metadata = {
            "format": STATE_FORMAT,
            "progress": json.dumps(dataclasses.asdict(progress)),
            "config": json.dumps(dataclasses.asdict(config)),
            "optimizer": json.dumps(optimizer_rest),
            "vocab": json.dumps(model.vocab),
        }
        tensors = {k: v.cpu() for k, v in tensors.items()}
        try:
            with atomic_path(self.state_path) as temporary:
                save_file(tensors, str(temporary), metadata=metadata)
        except SafetensorError as error:  # safetensors' own write failures are not OSErrors
            raise WriteError(None, f"Could not write {self.state_path}: {error}", self.state_path) from error

    def load_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The saved tensors and metadata (config, progress, optimizer, vocab), validated."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(self.state_path), framework="pt") as file:
                metadata = file.metadata() or {}
                tensors = {key: file.get_tensor(key) for key in file.keys()}
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(f"{self.state_path} is damaged or truncated: {error}") from None
        if metadata.get("format") != STATE_FORMAT:
            raise CheckpointError(f"{self.state_path} is not a training state of this project")
        try:
            decoded = {key: json.loads(metadata[key]) for key in ("progress", "config", "optimizer", "vocab")}
        except (KeyError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{self.state_path} has damaged metadata: {error}") from None
        return tensors, decoded

    def saved_config(self) -> TrainConfig:
        """The configuration of the run saved here (read from the training state's metadata)."""
        from safetensors import SafetensorError, safe_open

        if not self.state_path.is_file():
            raise TrainingError(f"--resume: {self.state_path} does not exist; nothing to resume")
        try:
            with safe_open(str(self.state_path), framework="pt") as file:
                saved = json.loads((file.metadata() or {})["config"])
            return TrainConfig(**saved)
        except (SafetensorError, OSError, KeyError, TypeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{self.state_path} is damaged or truncated: {error}") from None

    def read_log(self) -> list[dict]:
        """The metrics log; a last line cut short by a kill is dropped."""
        if not self.log_path.is_file():
            return []
        records = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return records

    def truncate_log(self, step: int) -> None:
        """Keep the log records up to ``step`` (those after it belong to work being redone)."""
        kept = [r for r in self.read_log() if r["step"] <= step]
        atomic_write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in kept))

    def append_log(self, record: dict) -> None:
        with open(self.log_path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
            file.flush()

    def plot_loss_curve(self) -> None:
        records = self.read_log()
        if not records:
            return
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
        train = [r for r in records if "train_loss" in r]
        val = [r for r in records if "val_loss" in r]
        axes.plot([r["chars_seen"] / 1e6 for r in train], [r["train_loss"] for r in train], label="train")
        axes.plot([r["chars_seen"] / 1e6 for r in val], [r["val_loss"] for r in val], "o-", label="validation")
        axes.set_xlabel("characters trained on (millions)")
        axes.set_ylabel("loss (nats/char)")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        with atomic_path(self.path / CURVE_NAME) as temporary:
            figure.savefig(temporary, format="png")
        plt.close(figure)


# ---- the loop -----------------------------------------------------------------------------


def _check_same_model(saved: dict, config: TrainConfig) -> None:
    changed = [
        f"--{name.replace('_', '-')} {getattr(config, name)!r} (the run has {saved.get(name)!r})"
        for name in MODEL_FIELDS
        if saved.get(name, MODEL_DEFAULTS[name]) != getattr(config, name)
    ]
    if changed:
        raise TrainingError("--resume cannot change the model: " + "; ".join(changed))


def train(
    config: TrainConfig,
    out: str | os.PathLike,
    resume: bool = False,
    command: str | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train as ``config`` says, keeping the run in ``out``; return the final metrics.

    ``out`` always holds the best model so far; with ``resume`` the run continues from the
    training state saved there (same model, same data position, same optimizer and RNG).
    """
    from tqdm.auto import tqdm

    config.validate()
    started = time.perf_counter()
    device = select_device(config.device)
    run = RunFolder(out)
    run.prepare(resume)

    splits = load_text_splits(config.data, text_column=config.text_column, split=config.split)
    tokenizer = CharTokenizer.from_text(splits.train, splits.validation, splits.test)
    train_ids = torch.tensor(tokenizer.encode(splits.train), dtype=torch.long)
    val_ids = torch.tensor(tokenizer.encode(splits.validation), dtype=torch.long)
    test_ids = torch.tensor(tokenizer.encode(splits.test), dtype=torch.long)
    batches = TBPTTBatches(train_ids, config.batch_size, config.seq_len).to(device)

    torch.manual_seed(config.seed)
    progress = Progress()
    hidden: Hidden | None = None
    if resume:
        tensors, saved = run.load_state()
        _check_same_model(saved["config"], config)
        if saved["vocab"] != tokenizer.vocab:
            raise TrainingError("--resume: the data gives a different vocabulary than the run was trained on")
        model = CharRNN(tokenizer.vocab, **config.model_kwargs())
        weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        if model.tie_weights:
            weights["decoder.weight"] = weights["encoder.weight"]
        model.load_state_dict(weights, strict=True)
        model.to(device)
        optimizer = make_optimizer(model, config)
        optimizer.load_state_dict(_unflatten_optimizer(tensors, saved["optimizer"]))
        progress = Progress(**saved["progress"])
        average = WeightAverage(model)
        average.load_state(tensors, progress.averaged_steps)
        hidden = _hidden_from(tensors, device)
        torch.set_rng_state(tensors["rng.cpu"])
        if "rng.cuda" in tensors and device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        run.truncate_log(progress.step)
    else:
        model = CharRNN(tokenizer.vocab, **config.model_kwargs()).to(device)
        optimizer = make_optimizer(model, config)
        average = WeightAverage(model)
        if run.log_path.exists():
            run.log_path.unlink()

    say = log or (lambda message: tqdm.write(message))
    baseline = unigram_loss(train_ids, val_ids, tokenizer.vocab_size)
    say(
        f"{config.cell} {config.num_layers}x{config.hidden_size}: {model.num_parameters():,} parameters, "
        f"vocab {tokenizer.vocab_size}, train {len(splits.train):,} chars, device {device}; "
        f"unigram baseline {baseline:.3f} nats/char"
        + (f"; resuming at step {progress.step}" if resume else "")
    )

    def finished() -> bool:
        return (config.max_steps is not None and progress.step >= config.max_steps) or (
            config.time_budget is not None and progress.train_seconds >= config.time_budget
        )

    total = config.max_steps if config.max_steps is not None else None
    bar = tqdm(total=total, initial=progress.step, disable=not show_progress, unit="step", dynamic_ncols=True)
    running_loss = torch.zeros((), device=device)
    running_steps = 0
    window_start = time.perf_counter()
    window_chars = 0
    stopped_early = False
    try:
        while not finished() and not stopped_early:
            step_started = time.perf_counter()
            epoch, index = batches.position(progress.step)
            if index == 0:
                hidden = None  # a new epoch starts every stream from the beginning
            inputs, targets = batches[index]
            lr = learning_rate(config, progress.step, progress.train_seconds)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, hidden = train_step(model, optimizer, inputs, targets, hidden, config.grad_clip)
            if config.average_after is not None and (
                schedule_progress(config, progress.step + 1, progress.train_seconds) > config.average_after
            ):
                average.update()
                progress.averaged_steps = average.count
            running_loss += loss
            running_steps += 1
            progress.step += 1
            progress.chars_seen += inputs.numel()
            window_chars += inputs.numel()
            if device.type == "cuda":
                torch.cuda.synchronize()
            progress.train_seconds += time.perf_counter() - step_started
            bar.update(1)

            if progress.step % config.log_every == 0 or finished():
                now = time.perf_counter()
                chars_per_second = window_chars / max(now - window_start, 1e-9)
                train_loss = float(running_loss) / running_steps
                progress.last_train_loss = round(train_loss, 5)
                run.append_log(
                    {
                        "step": progress.step,
                        "epoch": round(progress.chars_seen / batches.chars_per_epoch, 4),
                        "chars_seen": progress.chars_seen,
                        "train_loss": round(train_loss, 5),
                        "lr": lr,
                        "chars_per_sec": round(chars_per_second),
                        "train_seconds": round(progress.train_seconds, 2),
                    }
                )
                bar.set_postfix(loss=f"{train_loss:.3f}", chars_s=f"{chars_per_second / 1000:.1f}k", epoch=epoch)
                if config.time_budget is not None and config.max_steps is None:
                    remaining = max(config.time_budget - progress.train_seconds, 0)
                    bar.set_description(f"{remaining:.0f}s left")
                running_loss.zero_()
                running_steps = 0
                window_start, window_chars = now, 0

            if progress.step % config.eval_every == 0 or finished():
                with average.swapped_in():  # the average, once there is one, is the model evaluated and kept
                    val_loss = evaluate(model, val_ids)
                    improved = val_loss < progress.best_val_loss
                    if improved:
                        run.save_best(model)
                if improved:
                    progress.best_val_loss = val_loss
                    progress.best_step = progress.step
                    progress.evals_without_improvement = 0
                else:
                    progress.evals_without_improvement += 1
                run.append_log(
                    {
                        "step": progress.step,
                        "chars_seen": progress.chars_seen,
                        "val_loss": round(val_loss, 5),
                        "val_bpc": round(bits_per_char(val_loss), 5),
                        "train_seconds": round(progress.train_seconds, 2),
                        **({"averaged_steps": average.count} if average.active else {}),
                    }
                )
                run.save_state(model, optimizer, hidden, progress, config, average)
                say(
                    f"step {progress.step}: val {val_loss:.4f} nats/char ({bits_per_char(val_loss):.3f} bits)"
                    + (" *best*" if improved else f", best {progress.best_val_loss:.4f} at step {progress.best_step}")
                )
                if config.patience is not None and progress.evals_without_improvement >= config.patience:
                    say(f"no improvement in {config.patience} evaluations: stopping early")
                    stopped_early = True
                window_start = time.perf_counter()  # evaluation time is not training throughput
    except KeyboardInterrupt:
        bar.close()
        run.save_state(model, optimizer, hidden, progress, config, average)
        say(f"interrupted at step {progress.step}; the state is saved: continue with --resume")
        raise
    finally:
        bar.close()

    return finish_run(run, config, splits, train_ids, val_ids, test_ids, baseline, progress, device, started, command)


def finish_run(run, config, splits, train_ids, val_ids, test_ids, baseline, progress, device, started, command) -> dict:
    """Evaluate the best model on every split, write metrics.json and the loss curve."""
    best = CharRNN.from_pretrained(run.path).to(device)
    val_loss = evaluate(best, val_ids)
    test_loss = evaluate(best, test_ids)
    metrics = {
        "model": {"vocab_size": best.vocab_size, **config.model_kwargs()},
        "params": best.num_parameters(),
        "train_loss": progress.last_train_loss,
        "val_loss": round(val_loss, 5),
        "val_bpc": round(bits_per_char(val_loss), 5),
        "test_loss": round(test_loss, 5),
        "test_bpc": round(bits_per_char(test_loss), 5),
        "unigram_val_loss": round(baseline, 5),
        "loss_note": "nats/char; validation and test: the best model, each split read as one stream "
        "with the state carried; train: mean training loss of the last logged steps (dropout on)",
        "best_step": progress.best_step,
        "steps": progress.step,
        "chars_seen": progress.chars_seen,
        "epochs": round(progress.chars_seen / (len(train_ids) - 1), 3),
        "train_seconds": round(progress.train_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "device": _describe_device(device),
        "torch": torch.__version__,
        "data": {"source": splits.source, **splits.sizes()},
        "config": dataclasses.asdict(config),
        "command": command,
    }
    atomic_write_text(run.path / METRICS_NAME, json.dumps(metrics, indent=2) + "\n")
    run.plot_loss_curve()
    return metrics


def _describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {threads} thread{'s' if threads > 1 else ''})"
