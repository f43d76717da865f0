"""Training in the page: the caps, one training run in a process of its own, and the models it leaves.

A run is ``python -m rnn_demo.cli.train`` (the same trainer as the command line) on one torch
thread, in a child process tied to the server (:mod:`rnn_demo.subprocesses`) and below its CPU
priority: Stop ends it at once, it never blocks the server's event loop, a crash costs that run
only, and it never outlives the server. Its time is wall time (``--wall-budget``): evaluations
count, so a run asked for N seconds ends a few seconds after N, whatever the text. Its progress is
read from the run folder's ``metrics.jsonl`` as the trainer writes it. The best model so far is
always a loadable ``save_pretrained`` folder there (the trainer saves it at every evaluation that
improves), so a stopped run keeps it. Who runs next is the line's
(:mod:`rnn_demo.serving.training_line`).

A finished model is kept by :class:`TrainedModels` under a random ``model_id``: whoever holds the
id (the browser session that trained it, an API caller) can use it, nobody else can list it, and it
never joins the shared zoo. A visitor keeps at most ``models_per_client`` (their least recently
used out) and never evicts another's; the server keeps about ``max_models``, each for
``model_minutes`` after its last use; an evicted model's folder is deleted.

Every cap is in :class:`TrainingLimits`, read once from the environment. Nothing here imports torch
or gradio.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from safetensors import SafetensorError

from rnn_demo import subprocesses
from rnn_demo.files import WriteError, atomic_path, atomic_write_text, describe_os_error
from rnn_demo.model.checkpoint import CELLS, CONFIG_NAME, STEP_KEY, VAL_LOSS_KEY, WEIGHTS_NAME, weights_metadata
from rnn_demo.serving.clients import LOCAL, Client
from rnn_demo.serving.errors import UserError
from rnn_demo.serving.lifecycle import temporary_root
from rnn_demo.serving.requests import RequestError
from rnn_demo.serving.training_line import TrainingLine
from rnn_demo.serving.zoo import METRICS_NAME, ModelInfo, ModelZoo, describe_model_folder

SHIPPED_TEXT = Path(__file__).resolve().parents[2] / "data" / "tinyshakespeare.txt"
SHIPPED_TEXT_NAME = "tiny shakespeare"
LOG_NAME = "metrics.jsonl"  # the trainer's log (rnn_demo.training.run_folder.LOG_NAME)
STATE_NAME = "training_state.safetensors"  # its resumable state (run_folder.STATE_NAME)
TEXT_NAME = "text.txt"
# The in-page trainer's fixed settings: the command line's defaults for these small models, with
# the loss logged and the model evaluated often enough for a live chart and for a Stop to keep
# something (the best model is saved at evaluations only).
SEQ_LEN = 64
BATCH_SIZE = 16
LOG_EVERY = 10
EVAL_EVERY = 100
MIN_SECONDS = 5.0
TRAINING_NICENESS = 10  # CPU priority steps below the server's for a training process
POLL_SECONDS = 0.5  # how often the run folder's log is read for new progress
LAYER_CHOICES = (1, 2)
ENV_PREFIX = "RNN_DEMO_TRAIN_"
# The value the page's cell dropdowns take for the session's own trained model (see Trainer.resolve).
YOUR_MODEL = "yours"
# Browser sessions whose last trained model the server remembers (most recent first out last). On
# the server, not in a gr.State: a gr.State on the page makes every API client hold a heartbeat open.
SESSIONS_KEPT = 1_000


def _limit(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainingLimits:
    """What the in-page trainer allows. Each can be set by ``RNN_DEMO_TRAIN_<NAME>`` (upper case)
    on a self-hosted server; :meth:`from_environment` reads them."""

    max_hidden_size: int = _limit(256, "the largest hidden size a run may ask for")
    max_seconds: float = _limit(120.0, "the longest training time a run may ask for, in seconds")
    max_text_mb: float = _limit(5.0, "the largest text (pasted or uploaded), in megabytes of UTF-8")
    min_chars: int = _limit(1_000, "the shortest text: 5% of it is the validation split")
    # Chinese text uses thousands of distinct characters (about 3,500 cover everyday writing).
    max_vocab: int = _limit(6_000, "the most distinct characters a text may have")
    max_models: int = _limit(24, "trained models the server keeps (a training that would need room held by others' is refused)")
    models_per_client: int = _limit(3, "trained models one visitor keeps (their least recently used out)")
    model_minutes: float = _limit(60.0, "minutes a trained model is kept after its last use")
    concurrency: int = _limit(1, "trainings that run at the same time, server-wide")
    max_waiting: int = _limit(4, "trainings that wait for their turn, server-wide (one more is refused at once)")

    @property
    def max_text_bytes(self) -> int:
        return int(self.max_text_mb * 1_000_000)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> TrainingLimits:
        """The defaults, with every ``RNN_DEMO_TRAIN_<NAME>`` that is set; ValueError names a bad one."""
        environ = os.environ if environ is None else environ
        values = {}
        for limit in fields(cls):
            name = ENV_PREFIX + limit.name.upper()
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            kind = type(limit.default)
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"${name} must be a{'n integer' if kind is int else ' number'}, got {raw!r}") from None
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"${name} must be positive, got {raw!r}")
            values[limit.name] = value
        return cls(**values)


@dataclass(frozen=True)
class TrainingRequest:
    """A validated request to train a model."""

    text: str
    source: str  # what the text is, for the model's metrics: "tiny shakespeare", "pasted text", a file name
    cell: str
    hidden_size: int
    num_layers: int
    seconds: float


def _whole_number(name: str, value, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError("{name} must be a whole number, got {value!r}", name=name, value=value)
    if not low <= value <= high:
        raise RequestError(
            "{name} must be between {low} and {high}, got {value}", name=name, low=low, high=high, value=value
        )
    return value


def validate_training_request(
    limits: TrainingLimits, text, cell, hidden_size, num_layers, seconds, source: str = "pasted text"
) -> TrainingRequest:
    """Check a training request against ``limits``; RequestError names the first bad argument."""
    if not isinstance(text, str):
        raise RequestError("text must be a string, got {type}", type=type(text).__name__)
    if not text.strip():
        raise RequestError("The text is empty: paste some text, upload a .txt file, or train on tiny shakespeare.")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_text_bytes:
        raise RequestError(
            "The text is {mb:.1f} MB; at most {limit_mb:g} MB can be trained on here.",
            mb=size / 1e6,
            limit_mb=limits.max_text_mb,
        )
    if len(text) < limits.min_chars:
        raise RequestError(
            "The text has {length:,} characters; at least {minimum:,} are needed, so that 5% of it can be set aside to measure the model on.",
            length=len(text),
            minimum=limits.min_chars,
        )
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise RequestError("The text holds half of a UTF-16 surrogate pair, which is not a character.")
    distinct = len(set(text))
    if distinct > limits.max_vocab:
        raise RequestError(
            "The text has {distinct:,} distinct characters; at most {limit:,} are allowed.",
            distinct=distinct,
            limit=limits.max_vocab,
        )
    if cell not in CELLS:
        raise RequestError("Unknown cell {cell!r}; choose one of {cells}", cell=cell, cells=", ".join(CELLS))
    hidden_size = _whole_number("hidden_size", hidden_size, 1, limits.max_hidden_size)
    num_layers = _whole_number("num_layers", num_layers, LAYER_CHOICES[0], LAYER_CHOICES[-1])
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise RequestError("seconds must be a number, got {seconds!r}", seconds=seconds)
    if not MIN_SECONDS <= seconds <= limits.max_seconds:
        raise RequestError(
            "seconds must be between {low:g} and {high:g}, got {seconds:g}",
            low=MIN_SECONDS,
            high=limits.max_seconds,
            seconds=seconds,
        )
    return TrainingRequest(text, source, cell, hidden_size, num_layers, float(seconds))


def read_text_file(path: str | os.PathLike, limits: TrainingLimits) -> str:
    """An uploaded file's text; RequestError when it is too large, binary or not UTF-8."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.max_text_bytes:
            raise RequestError(
                "{file} is {mb:.1f} MB; at most {limit_mb:g} MB can be trained on here.",
                file=path.name,
                mb=size / 1e6,
                limit_mb=limits.max_text_mb,
            )
        data = path.read_bytes()
    except OSError as error:
        raise RequestError(
            "Could not read the uploaded file {file}: {reason}", file=path.name, reason=error.strerror or error
        ) from None
    if b"\x00" in data:
        raise RequestError("{file} is not a text file (it holds NUL bytes): upload UTF-8 text.", file=path.name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(
            "{file} is not UTF-8 text (byte {position:,} cannot be decoded).", file=path.name, position=error.start
        ) from None
    return text.removeprefix("\ufeff")  # a byte-order mark is not part of the text


def shipped_text() -> str:
    return SHIPPED_TEXT.read_text(encoding="utf-8")


# ---- the models trained here -------------------------------------------------------------------


@dataclass
class TrainedModel:
    """A model trained on this server: its folder, its description and a zoo of it alone."""

    model_id: str
    info: ModelInfo
    zoo: ModelZoo
    source: str
    last_used: float
    owner: str = ""  # the address of the visitor who trained it (rnn_demo.serving.clients.Client)


class TrainedModels:
    """The models trained on this server, by ``model_id``, each kept ``limits.model_minutes`` after its
    last use. A visitor (``owner``) keeps at most ``limits.models_per_client``, their least recently
    used out, and never evicts another's: :meth:`seconds_until_room` says whether a new one fits among the
    ``limits.max_models``. Thread-safe."""

    def __init__(self, limits: TrainingLimits, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._models: collections.OrderedDict[str, TrainedModel] = collections.OrderedDict()

    def add(self, folder: Path, source: str, owner: str = "") -> TrainedModel:
        """Keep the model in ``folder`` (which it then owns) under a new id; evicts the owner's least
        recently used ones beyond their cap, or beyond the server's when they have one to give."""
        info = describe_model_folder(folder)  # named as a zoo of this folder alone names it
        model_id = secrets.token_urlsafe(12)
        entry = TrainedModel(model_id, info, ModelZoo(folder), source, self._clock(), owner)
        with self._lock:
            self._drop_expired()
            self._models[model_id] = entry
            owned = [key for key, kept in self._models.items() if kept.owner == owner and key != model_id]
            while owned and (
                len(owned) >= self.limits.models_per_client or len(self._models) > self.limits.max_models
            ):
                _delete(self._models.pop(owned.pop(0)))  # least recently used first
        return entry

    def seconds_until_room(self, owner: str) -> float:
        """0 when a new model of ``owner``'s fits (there is room, or they have one of their own to
        give up); else the seconds until the first model expires and makes room."""
        with self._lock:
            self._drop_expired()
            if len(self._models) < self.limits.max_models or any(m.owner == owner for m in self._models.values()):
                return 0.0
            first = min(entry.last_used for entry in self._models.values())
            return max(first + self.limits.model_minutes * 60 - self._clock(), 1.0)

    def get(self, model_id) -> TrainedModel:
        """The model with this id, now its last use; RequestError when it is unknown or expired."""
        if not isinstance(model_id, str) or not model_id:
            raise RequestError("model_id must be the id a training returned (a string)")
        with self._lock:
            self._drop_expired()
            entry = self._models.get(model_id)
            if entry is None:
                raise RequestError(
                    "No trained model has the id {model_id!r}: it never existed or has expired (models are kept {minutes:g} minutes after their last use, {most} per visitor). Train it again.",
                    model_id=model_id,
                    minutes=self.limits.model_minutes,
                    most=self.limits.models_per_client,
                )
            entry.last_used = self._clock()
            self._models.move_to_end(model_id)
            return entry

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired()
            return len(self._models)

    def clear(self) -> None:
        with self._lock:
            while self._models:
                _delete(self._models.popitem()[1])

    def _drop_expired(self) -> None:
        deadline = self._clock() - self.limits.model_minutes * 60
        for model_id in [key for key, entry in self._models.items() if entry.last_used < deadline]:
            _delete(self._models.pop(model_id))


def _delete(entry: TrainedModel) -> None:
    shutil.rmtree(entry.info.path.parent, ignore_errors=True)  # the run's folder: its text, model, zip


# ---- one training run --------------------------------------------------------------------------


class TrainingFailed(UserError, RuntimeError):
    """The training process ended without a model; the message says why, in one sentence."""


@dataclass
class Progress:
    """What a run has done so far (one update of /train)."""

    waiting: int = 0  # the place in the line while waiting for a turn (1 = next), 0 once it runs
    starts_in: float = 0.0  # while waiting, about how many seconds until it runs
    step: int = 0
    elapsed: float = 0.0  # wall seconds since the run started, the budget's measure
    train_seconds: float = 0.0  # of them, seconds of training steps (evaluations excluded)
    train_loss: float | None = None  # nats/char, mean of the last logged steps
    val_loss: float | None = None  # nats/char of the latest evaluation; None until the first
    best_val_loss: float | None = None
    chars_per_second: float | None = None
    seconds_left: float = 0.0
    done: bool = False
    stopped: bool = False
    model_id: str | None = None
    curve: list[tuple[int, str, float]] = field(default_factory=list)  # (step, "train"/"validation", loss)

    def to_dict(self) -> dict:
        """The public progress object (the curve is the page's, not the API's)."""
        return {
            "waiting": self.waiting,
            "starts_in": round(self.starts_in),
            "step": self.step,
            "elapsed": round(self.elapsed, 2),
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "best_val_loss": self.best_val_loss,
            "chars_per_second": self.chars_per_second,
            "seconds_left": round(self.seconds_left, 1),
            "done": self.done,
            "stopped": self.stopped,
            "model_id": self.model_id,
        }


class TrainingRun:
    """One training in a child process, in its own folder under ``root``. A run that cannot start
    (a full disk, no process to spare) raises OSError and leaves no folder and no process."""

    def __init__(self, request: TrainingRequest, root: Path, clock: Callable[[], float] = time.perf_counter):
        self.request = request
        self.folder = Path(tempfile.mkdtemp(prefix="run-", dir=root))
        # "my-": the model's name wherever it is shown, apart from the shared zoo's models.
        self.model_folder = self.folder / f"my-{request.cell}-h{request.hidden_size}"
        self._clock = clock
        self._log_offset = 0
        self.progress = Progress(seconds_left=request.seconds)
        self._output = None
        try:
            text_path = self.folder / TEXT_NAME
            text_path.write_text(request.text, encoding="utf-8", newline="")
            arguments = [
                "--data", str(text_path),
                "--cell", request.cell,
                "--hidden-size", str(request.hidden_size),
                "--num-layers", str(request.num_layers),
                "--wall-budget", repr(request.seconds),
                "--seq-len", str(SEQ_LEN),
                "--batch-size", str(BATCH_SIZE),
                "--log-every", str(LOG_EVERY),
                "--eval-every", str(EVAL_EVERY),
                "--out", str(self.model_folder),
                "--quiet",
            ]  # fmt: skip
            environment = subprocesses.environment()
            # One thread: the server's other work (the page, generation) keeps its cores.
            environment.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
            self._output = open(self.folder / "train.log", "wb")  # noqa: SIM115 (open while the process runs; kill() closes it)
            self.started = clock()
            # Ends with the server, however it ends; below the server's priority, so that serving
            # comes first on a busy CPU; in a session of its own, so that kill() reaches all of it.
            self.process = subprocesses.start(
                "rnn_demo.cli.train", arguments, niceness=TRAINING_NICENESS, stdout=self._output,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment, cwd=self.folder,
                start_new_session=True,
            )  # fmt: skip
        except BaseException:
            if self._output is not None:
                self._output.close()
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def read_progress(self) -> Progress:
        """The progress (a copy of its own), with what the trainer logged since the last call."""
        progress = self.progress
        progress.elapsed = self._clock() - self.started
        log = self.model_folder / LOG_NAME
        try:
            with open(log, "rb") as file:
                file.seek(self._log_offset)
                data = file.read()
        except FileNotFoundError:
            data = b""
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self._log_offset += len(complete)
        for line in complete.decode("utf-8").splitlines():
            record = json.loads(line)
            progress.step = max(progress.step, record["step"])
            progress.train_seconds = record.get("train_seconds", progress.train_seconds)
            if "train_loss" in record:
                progress.train_loss = record["train_loss"]
                progress.chars_per_second = record.get("chars_per_sec")
                progress.curve.append((record["step"], "train", record["train_loss"]))
            if "val_loss" in record:
                progress.val_loss = record["val_loss"]
                if progress.best_val_loss is None or record["val_loss"] < progress.best_val_loss:
                    progress.best_val_loss = record["val_loss"]
                progress.curve.append((record["step"], "validation", record["val_loss"]))
        progress.seconds_left = max(self.request.seconds - progress.elapsed, 0.0)
        return dataclasses.replace(progress, curve=list(progress.curve))

    def has_model(self) -> bool:
        return (self.model_folder / CONFIG_NAME).is_file() and (self.model_folder / WEIGHTS_NAME).is_file()

    def failure(self) -> str:
        """The trainer's last words (its ``error: ...`` line), for a run that ended badly."""
        self._output.flush()
        lines = (self.folder / "train.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
        if errors:
            return errors[-1]
        code = self.process.returncode
        if code is not None and code < 0:
            return f"the training process was ended by signal {signal.Signals(-code).name}"
        return lines[-1] if lines else f"the training process exited with status {code}"

    def kill(self) -> None:
        """End the training process now (and whatever it started)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self._output.close()

    def saved_score(self) -> tuple[float | None, int | None]:
        """The validation loss (nats/char) and the step the best model was saved with, from its weights'
        header: they are replaced together, so a run stopped between the save and its log line still gets
        its model's own score. Weights without them get the log's best loss, at no known step."""
        try:
            saved = weights_metadata(self.model_folder / WEIGHTS_NAME)
            return float(saved[VAL_LOSS_KEY]), int(saved[STEP_KEY])
        except (OSError, KeyError, ValueError, SafetensorError):
            return self.progress.best_val_loss, None

    def write_stopped_metrics(self, val_loss: float | None, best_step: int | None) -> None:
        """A stopped run's metrics.json (the trainer writes the full one only when it finishes), with
        its best model's score, so that the model is described like any other. Written atomically: a
        WriteError (a full disk) leaves no metrics.json, and the model as it was."""
        progress = self.progress
        metrics = {
            "val_loss": val_loss,
            "val_bpc": round(val_loss / math.log(2), 5) if val_loss is not None else None,
            "best_step": best_step,
            "train_seconds": round(progress.train_seconds, 1),
            "steps": progress.step,
            "stopped": "by the user, before its time budget; the model is the best evaluated so far",
            "device": "cpu (1 thread)",
            "data": {"source": self.request.source},
        }
        atomic_write_text(self.model_folder / METRICS_NAME, json.dumps(metrics, indent=2) + "\n")

    def discard(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def zip_model(entry: TrainedModel) -> Path:
    """A zip of the trained model's ``save_pretrained`` folder (config, weights, card, metrics), which
    ``CharRNN.from_pretrained`` loads once unzipped; made once, next to the folder."""
    import zipfile

    folder = entry.info.path
    archive = folder.parent / f"{folder.name}.zip"
    if not archive.exists():
        # Written beside it and renamed: a zip that fails half-way (a full disk) leaves no file behind,
        # and a WriteError says why.
        with atomic_path(archive) as staging, zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(folder.iterdir()):
                if path.is_file() and not path.name.startswith(".") and not path.name.endswith(".tmp"):
                    bundle.write(path, f"{folder.name}/{path.name}")
    return archive


def publish_command(entry: TrainedModel) -> str:
    """The command that pushes the unzipped model to the Hub."""
    return f"python -m rnn_demo.publish model --model-dir {entry.info.path.name} --repo-id YOUR_USER/{entry.info.path.name}"


class Trainer:
    """The server's in-page training: the limits, the line of runs, the runs and the models they leave.

    How many runs go at once, and who waits, is the line's business
    (:class:`~rnn_demo.serving.training_line.TrainingLine`): ``limits.concurrency`` run, at most
    ``limits.max_waiting`` wait and see their place, one per visitor, and a request beyond is
    refused at once."""

    def __init__(self, limits: TrainingLimits | None = None, root: str | os.PathLike | None = None):
        """``root``: the folder of the runs and the models they leave; by default a temporary root of
        this process's own (:func:`~rnn_demo.serving.lifecycle.temporary_root`), removed when it exits,
        or by the next start when it could not (SIGKILL)."""
        self.limits = limits or TrainingLimits.from_environment()
        owns_root = root is None
        self.root = temporary_root() if root is None else Path(root)
        self.models = TrainedModels(self.limits)
        self.line = TrainingLine(self.limits.concurrency, self.limits.max_waiting)
        self._runs: set[TrainingRun] = set()  # running now
        # A server that exits ends its runs at once (the kernel would, a moment later: they are tied
        # to it, see rnn_demo.subprocesses) and removes the models it made.
        atexit.register(self.close, remove_root=owns_root)
        self._sessions_lock = threading.Lock()
        self._sessions: collections.OrderedDict[str, str] = collections.OrderedDict()  # session -> model_id

    def remember(self, session: str, model_id: str) -> None:
        """``model_id`` is now the browser session's own model (its "Your model")."""
        with self._sessions_lock:
            self._sessions[session] = model_id
            self._sessions.move_to_end(session)
            while len(self._sessions) > SESSIONS_KEPT:
                self._sessions.popitem(last=False)

    def session_model(self, session: str) -> TrainedModel | None:
        """The session's own model, None when it has none (or it has expired)."""
        with self._sessions_lock:
            model_id = self._sessions.get(session)
        if model_id is None:
            return None
        try:
            return self.models.get(model_id)
        except RequestError:
            return None

    def resolve(self, zoo: ModelZoo, cell, hidden_size, session: str) -> tuple[ModelZoo, str, int]:
        """Where a page's request for (cell, hidden_size) goes: the shared ``zoo``, or, for the cell
        YOUR_MODEL, the zoo of the browser session's own trained model, with its cell and size.
        RequestError when the session has none, or it has expired."""
        if cell != YOUR_MODEL:
            return zoo, cell, hidden_size
        with self._sessions_lock:
            model_id = self._sessions.get(session)
        if model_id is None:
            raise RequestError("You have no model of your own yet: train one in the Train tab first.")
        entry = self.models.get(model_id)
        return entry.zoo, entry.info.cell, entry.info.hidden_size

    def close(self, remove_root: bool = False) -> None:
        """End every run now; with ``remove_root``, delete every model too."""
        for run in list(self._runs):
            run.kill()
        if remove_root:
            self.models.clear()
            shutil.rmtree(self.root, ignore_errors=True)

    def train(
        self, request: TrainingRequest, should_stop: Callable[[], bool] = lambda: False, client: Client = LOCAL
    ) -> Iterator[Progress]:
        """Take ``client``'s place in the line, at once (RequestError when the client has one already,
        the line is full, or the server's models leave no room for one more of theirs); yield its
        position while it waits, then the run's progress about every POLL_SECONDS, and last an update
        with ``done`` set and the ``model_id``. ``should_stop()`` true ends the wait, or the run,
        keeping the best model so far; closing the iterator ends it and keeps nothing. Raises
        TrainingFailed when the run ends without a model."""
        wait = self.models.seconds_until_room(client.address)
        if wait:
            raise RequestError(
                "The server keeps {most} trained models and holds that many of other visitors': try again in about {minutes:.0f} min, when one expires.",
                most=self.limits.max_models,
                minutes=max(wait / 60, 1),
            )
        place = self.line.join(client, request.seconds)
        try:
            while (position := self.line.wait_turn(place, POLL_SECONDS)) > 0:
                if should_stop():
                    raise TrainingFailed("Stopped while waiting for its turn: nothing was trained.")
                yield Progress(waiting=position, starts_in=self.line.starts_in(place), seconds_left=request.seconds)
            yield from self._run(request, should_stop, client)
        finally:
            self.line.leave(place)

    def _run(self, request: TrainingRequest, should_stop: Callable[[], bool], client: Client) -> Iterator[Progress]:
        run = None
        kept = False
        try:
            try:
                run = TrainingRun(request, self.root)
            except OSError as error:
                raise TrainingFailed("The training could not start: {error}.", error=describe_os_error(error)) from None
            self._runs.add(run)
            yield run.read_progress()
            while run.running:
                if should_stop():
                    run.kill()
                    progress = run.read_progress()
                    if not run.has_model():
                        raise TrainingFailed(
                            "Stopped at step {step}, before the first evaluation (every {eval_every} steps): no model was kept.",
                            step=progress.step,
                            eval_every=EVAL_EVERY,
                        )
                    progress.best_val_loss, best_step = run.saved_score()
                    try:
                        run.write_stopped_metrics(progress.best_val_loss, best_step)
                    except WriteError:
                        pass  # the model the user stopped is kept all the same, described without its score
                    progress.stopped = True
                    break
                time.sleep(POLL_SECONDS)
                yield run.read_progress()
            else:
                progress = run.read_progress()
                if run.process.returncode != 0 or not (run.model_folder / METRICS_NAME).is_file():
                    raise TrainingFailed("The training failed: {reason}", reason=run.failure())
            run.kill()  # reaps the process and closes its log
            for leftover in (run.folder / TEXT_NAME, run.model_folder / STATE_NAME):
                leftover.unlink(missing_ok=True)  # the text's copy and the optimizer's state: not the model
            entry = self.models.add(run.model_folder, request.source, client.address)
            kept = True
            progress.done = True
            progress.model_id = entry.model_id
            yield progress
        finally:
            if run is not None:
                self._runs.discard(run)
                if not kept:
                    run.discard()
