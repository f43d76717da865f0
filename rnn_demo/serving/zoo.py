"""Finding, loading and caching the trained models that the demo serves.

A zoo is one source of models, fixed by configuration (never by a request):

* a folder of model folders, ``<root>/<cell>-h<size>/`` (each a ``save_pretrained`` folder,
  usually with the ``metrics.json`` of its training run), e.g. ``models/`` in the repository;
* a single model folder (it has a ``config.json`` of its own);
* a Hugging Face Hub repo id laid out either way (downloaded once into the Hub cache, then
  read like a local folder).

A zoo serves either the models of continuous text (tiny shakespeare, or any text the Train tab
gets) or, with ``poems=True``, the models of Tang poems (``POEM_CORPORA``, told by the ``data``
of their ``metrics.json``): a poem model is never offered as a size of the others, nor the others
for poems, even when they share a folder.

The catalogue (what models exist, their size and scores) is read from the small JSON files on
first use; the weights of a model are loaded on the first request for it and then kept: as a
``CharRNN`` for the views inside the network, and as the engine's ``Weights`` (read without
torch) for generation.
Both are guarded by locks, so concurrent requests load each model once.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rnn_demo.model.checkpoint import CELLS, CONFIG_NAME, WEIGHTS_NAME
from rnn_demo.serving.errors import UserError

if TYPE_CHECKING:
    from rnn_demo.generation.engine import Weights
    from rnn_demo.model import CharRNN

MODELS_ENV = "RNN_DEMO_MODELS"  # a models folder, a model folder or a Hub repo id
METRICS_NAME = "metrics.json"  # written by rnn_demo.training.loop at the end of a run
# owner/name as the Hub spells repo ids; a local path that exists always wins over this.
REPO_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# The files the zoo reads from a Hub repo (at its root or one folder down).
HUB_PATTERNS = [CONFIG_NAME, WEIGHTS_NAME, METRICS_NAME] + [f"*/{n}" for n in (CONFIG_NAME, WEIGHTS_NAME, METRICS_NAME)]
# The training texts of poem models, as metrics.json names them (data/README.md).
POEM_CORPORA = ("data/tang",)


class UnknownModelError(UserError, KeyError):
    """No model in the zoo has the requested cell and hidden size."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class ModelInfo:
    """One model of the zoo, described from its files without loading its weights."""

    name: str  # the folder name, e.g. "lstm-h256"
    cell: str  # "rnn" (hand-written), "gru" or "lstm"
    hidden_size: int
    num_layers: int
    params: int  # trainable parameters
    val_bpc: float | None  # validation bits per character (None without metrics.json)
    test_bpc: float | None
    train_seconds: float | None  # training time of the run
    trained_on: str | None  # the device it was trained on
    size_bytes: int  # model.safetensors on disk
    path: Path  # the folder; kept on the server, never sent to clients
    corpus: str | None = None  # the text it was trained on (metrics.json's data source), if known

    @property
    def writes_poems(self) -> bool:
        return self.corpus in POEM_CORPORA

    @property
    def key(self) -> tuple[str, int]:
        return self.cell, self.hidden_size

    def to_dict(self) -> dict:
        """The public description (what the API returns): everything but the server path."""
        return {
            "name": self.name,
            "cell": self.cell,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "params": self.params,
            "val_bpc": self.val_bpc,
            "test_bpc": self.test_bpc,
            "train_seconds": self.train_seconds,
            "trained_on": self.trained_on,
            "size_bytes": self.size_bytes,
        }


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _optional_number(metrics: Mapping, key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _read_json_object(path: Path) -> dict:
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    if not isinstance(data, dict):
        raise ValueError("it does not hold a JSON object")
    return data


def describe_model_folder(folder: Path, name: str | None = None) -> ModelInfo:
    """Read a model folder's config.json (and metrics.json if present) into a ModelInfo
    (named ``name``, by default the folder's name).

    Raises ValueError (or OSError) when the folder is not a usable model.
    """
    try:
        config = _read_json_object(folder / CONFIG_NAME)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
        raise ValueError(f"{CONFIG_NAME} is unreadable: {error}") from None
    cell = config.get("cell", "lstm")
    hidden_size = config.get("hidden_size")
    num_layers = config.get("num_layers")
    if cell not in CELLS or not _positive_int(hidden_size) or not _positive_int(num_layers):
        raise ValueError(f"{CONFIG_NAME} does not describe a CharRNN (cell, hidden_size, num_layers)")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise ValueError(f"it has no {WEIGHTS_NAME}")
    metrics: dict = {}
    if (folder / METRICS_NAME).is_file():
        try:
            metrics = _read_json_object(folder / METRICS_NAME)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError):
            metrics = {}  # the scores are optional; the model itself is fine
    params = metrics.get("params")
    if not _positive_int(params):
        # No (valid) metrics: count by building the network from its config, without weights.
        from rnn_demo.model import CharRNN  # torch: only for folders without metrics.json

        try:
            params = CharRNN(**config).num_parameters()
        except (TypeError, ValueError) as error:
            raise ValueError(f"{CONFIG_NAME} does not describe a CharRNN: {error}") from None
    trained_on = metrics.get("device")
    data = metrics.get("data")
    corpus = data.get("source") if isinstance(data, dict) else None
    return ModelInfo(
        name=name or folder.name,
        cell=cell,
        hidden_size=hidden_size,
        num_layers=num_layers,
        params=params,
        val_bpc=_optional_number(metrics, "val_bpc"),
        test_bpc=_optional_number(metrics, "test_bpc"),
        train_seconds=_optional_number(metrics, "train_seconds"),
        trained_on=trained_on if isinstance(trained_on, str) else None,
        size_bytes=weights.stat().st_size,
        path=folder,
        corpus=corpus if isinstance(corpus, str) else None,
    )


def download_hub_repo(repo_id: str) -> Path:
    """Fetch the model files of a Hub model repo into the Hub cache; return the local folder."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=repo_id, allow_patterns=HUB_PATTERNS))


class ModelZoo:
    """The models of one source (a local folder or a Hub repo id), keyed by (cell, hidden_size).

    Args:
        source: a folder of model folders, a single model folder, or a Hub repo id.
        download: how a Hub repo id becomes a local folder (tests replace it).
        fallback: a local folder to serve instead when ``source`` is a Hub repo that cannot be
            downloaded (offline, unknown, no access); the reason stays in ``problems()``.
        poems: serve the poem models of the source (and only those) instead of the others.
    """

    def __init__(
        self,
        source: str | os.PathLike,
        download: Callable[[str], Path] = download_hub_repo,
        fallback: str | os.PathLike | None = None,
        poems: bool = False,
    ):
        self.source = str(source)
        self.poems = poems
        self._download = download
        self._fallback = str(fallback) if fallback is not None else None
        self._catalogue_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._catalogue: dict[tuple[str, int], ModelInfo] | None = None
        self._problems: list[str] = []
        self._loaded: dict[tuple[str, int], CharRNN] = {}
        self._weights: dict[tuple[str, int], Weights] = {}

    @classmethod
    def from_environment(
        cls, default_source: str | os.PathLike, environ: Mapping[str, str] | None = None, poems: bool = False
    ) -> ModelZoo:
        """The zoo named by $RNN_DEMO_MODELS, or ``default_source`` when it is unset or empty
        (and, when it names a Hub repo that cannot be fetched, as a fallback)."""
        environ = os.environ if environ is None else environ
        source = environ.get(MODELS_ENV, "").strip()
        if not source:
            return cls(default_source, poems=poems)
        return cls(source, fallback=default_source, poems=poems)

    # ---- the catalogue ----------------------------------------------------------------------

    def _scan(self) -> tuple[dict[tuple[str, int], ModelInfo], list[str]]:
        problems: list[str] = []
        root = Path(self.source).expanduser()
        single_name = root.name  # the model's name when the source is a single model
        if not root.is_dir():
            if REPO_ID_PATTERN.match(self.source) and not root.exists():
                single_name = self.source.split("/")[-1]  # not the cache's snapshot hash
                try:
                    root = self._download(self.source)
                except Exception as error:  # offline, unknown repo, no access: the demo still starts
                    problem = f"Could not download the Hub repo {self.source!r}: {error}"
                    if self._fallback is None:
                        return {}, [problem]
                    catalogue, problems = ModelZoo(self._fallback, poems=self.poems)._scan()
                    return catalogue, [f"{problem} Serving the local models in {self._fallback} instead."] + problems
            else:
                return {}, [f"The models folder {self.source} does not exist."]
        if (root / CONFIG_NAME).is_file():
            folders = [root]  # a single model
        else:
            folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        catalogue: dict[tuple[str, int], ModelInfo] = {}
        for folder in folders:
            if not (folder / CONFIG_NAME).is_file():
                continue  # not a model folder (notes, plots, ...)
            try:
                info = describe_model_folder(folder, name=single_name if folder == root else None)
            except (OSError, ValueError) as error:
                problems.append(f"Skipped {folder.name}: {error}")
                continue
            if info.writes_poems != self.poems:
                continue  # the other zoo's
            if info.key in catalogue:
                problems.append(
                    f"Skipped {folder.name}: {catalogue[info.key].name} is already the {info.cell} "
                    f"with hidden size {info.hidden_size}"
                )
                continue
            catalogue[info.key] = info
        if not catalogue:
            problems.append(f"No model folders (with {CONFIG_NAME} and {WEIGHTS_NAME}) found in {self.source}.")
        order = {cell: index for index, cell in enumerate(CELLS)}
        ordered = dict(sorted(catalogue.items(), key=lambda item: (order[item[0][0]], item[0][1])))
        return ordered, problems

    def _entries(self) -> dict[tuple[str, int], ModelInfo]:
        with self._catalogue_lock:
            if self._catalogue is None:
                self._catalogue, self._problems = self._scan()
            return self._catalogue

    def models(self) -> list[ModelInfo]:
        """Every model, ordered by cell (rnn, gru, lstm) and then hidden size."""
        return list(self._entries().values())

    def problems(self) -> list[str]:
        """Why folders were skipped, or why the zoo is empty (one sentence each)."""
        self._entries()
        return list(self._problems)

    def cells(self) -> list[str]:
        """The cells that have at least one model, in the order of ``CELLS``."""
        return list(dict.fromkeys(cell for cell, _ in self._entries()))

    def hidden_sizes(self, cell: str) -> list[int]:
        """The hidden sizes available for ``cell``, ascending (empty for an unknown cell)."""
        return [size for model_cell, size in self._entries() if model_cell == cell]

    def info(self, cell: str, hidden_size: int) -> ModelInfo:
        """The description of one model; UnknownModelError names what exists instead."""
        entries = self._entries()
        found = entries.get((cell, hidden_size))
        if found is not None:
            return found
        if not entries:
            raise UnknownModelError("No models are available ({problems}).", problems=" ".join(self._problems))
        if cell not in self.cells():
            raise UnknownModelError(
                "Unknown cell {cell!r}; available: {cells}.", cell=cell, cells=", ".join(self.cells())
            )
        sizes = ", ".join(str(size) for size in self.hidden_sizes(cell))
        raise UnknownModelError(
            "No {cell} model with hidden size {hidden_size!r}; available: {sizes}.",
            cell=cell,
            hidden_size=hidden_size,
            sizes=sizes,
        )

    def table(self) -> list[dict]:
        """The public description of every model (see ``ModelInfo.to_dict``)."""
        return [info.to_dict() for info in self.models()]

    # ---- the weights ------------------------------------------------------------------------

    def load(self, cell: str, hidden_size: int) -> CharRNN:
        """The model for (cell, hidden_size), loaded on first use and cached (in eval mode, on CPU).

        Raises UnknownModelError, or CheckpointError when its files cannot be loaded.
        """
        from rnn_demo.model import CharRNN  # torch is imported on the first load, not with the zoo

        info = self.info(cell, hidden_size)
        with self._load_lock:
            model = self._loaded.get(info.key)
            if model is None:
                model = CharRNN.from_pretrained(info.path)
                self._loaded[info.key] = model
            return model

    def weights(self, cell: str, hidden_size: int) -> Weights:
        """The engine weights of (cell, hidden_size), read from the model folder on first use without
        torch, and cached: every generation on the model shares them (the worker steps together the
        requests that do). Raises UnknownModelError, or CheckpointError when its files cannot be read."""
        from rnn_demo.generation.engine import Weights

        info = self.info(cell, hidden_size)
        with self._load_lock:
            weights = self._weights.get(info.key)
            if weights is None:
                weights = self._weights[info.key] = Weights.from_folder(info.path)
            return weights
