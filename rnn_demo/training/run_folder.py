"""The ``--out`` folder of a training run: the best model, the resumable state, the log, the curve.

Every file is written to a temporary name and renamed, so a run killed at any moment leaves the
last checkpoint loadable.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rnn_demo.files import WriteError, atomic_path, atomic_write_text, remove_stale_temporaries, replace_files_from
from rnn_demo.model import CharRNN, CheckpointError, Hidden
from rnn_demo.model.checkpoint import STEP_KEY, VAL_LOSS_KEY, WEIGHTS_NAME
from rnn_demo.training.config import TrainConfig, TrainingError

if TYPE_CHECKING:
    from rnn_demo.training.loop import WeightAverage

STATE_NAME = "training_state.safetensors"
LOG_NAME = "metrics.jsonl"
METRICS_NAME = "metrics.json"
CURVE_NAME = "loss_curve.png"
STATE_FORMAT = "rnn-demo-training-state/1"


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


def optimizer_state_from(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
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


def hidden_from(tensors: dict[str, torch.Tensor], device) -> Hidden | None:
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
    wall_seconds: float = 0.0  # the run's wall time, evaluations included (--wall-budget's measure)
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

    def begin(self, resume: bool, create: bool = True) -> None:
        """Make the folder ready for a new run, or check that it holds one to resume. ``create=False``
        only checks (torchrun's ranks other than 0, which never write here)."""
        if resume:
            if not self.state_path.is_file():
                raise TrainingError(f"--resume: {self.state_path} does not exist; nothing to resume")
        elif self.state_path.exists():
            raise TrainingError(
                f"{self.path} already holds a training run. Pass --resume to continue it, "
                "or choose another --out (nothing was overwritten)."
            )
        if not create:
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TrainingError(f"Cannot create the output folder {self.path}: {error}") from None
        remove_stale_temporaries(self.path)

    def save_best(self, model: CharRNN, val_loss: float | None = None, step: int | None = None) -> None:
        """Write the model as a ``save_pretrained`` folder into ``path``, file by file atomically.
        ``val_loss`` and ``step`` go into the weights file's header (``weights_metadata`` reads
        them), so that the score and the weights are replaced in the same rename."""
        from safetensors import SafetensorError

        staging = None
        try:
            staging = Path(tempfile.mkdtemp(prefix=".best-model.", suffix=".tmp", dir=self.path))
            model.save_pretrained(staging)
            if val_loss is not None:
                score = {VAL_LOSS_KEY: repr(float(val_loss)), STEP_KEY: str(step)}
                model.save_weights(staging / WEIGHTS_NAME, metadata=score)  # the mixin's save has no metadata
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
        extra: dict[str, torch.Tensor] | None = None,
        world_size: int = 1,
    ) -> None:
        """``extra``: more tensors to keep (every rank's random-number state under torchrun);
        ``world_size``: how many ranks trained, which a streamed run must resume on."""
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
        tensors.update(extra or {})
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        metadata = {
            "format": STATE_FORMAT,
            "progress": json.dumps(dataclasses.asdict(progress)),
            "config": json.dumps(dataclasses.asdict(config)),
            "optimizer": json.dumps(optimizer_rest),
            "vocab": json.dumps(model.vocab),
            "world_size": json.dumps(world_size),
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
            decoded["world_size"] = json.loads(metadata.get("world_size", "1"))
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


