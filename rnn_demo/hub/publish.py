"""Share a trained model on the Hugging Face Hub, host the demo as a Space, ship a model in models/.

The command line is :mod:`rnn_demo.cli.publish` (``python -m rnn_demo.publish``). The token comes
from ``HF_TOKEN`` or the stored login (``hf auth login``); it is never printed. Every failure is a
:class:`PublishError` (or a ``DataLoadError``/``CheckpointError``/``WriteError``) with one sentence.
"""


from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rnn_demo.files import WriteError, describe_os_error, replace_directory
from rnn_demo.model import CONFIG_NAME, WEIGHTS_NAME, CharRNN, CheckpointError
from rnn_demo.serving.zoo import MODELS_ENV, POEM_CORPORA

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the repository: app.py, rnn_demo/, models/
# What a Space needs to run the demo: the app, the library and its requirements, the card.
SPACE_FILES = ("app.py", "requirements.txt", "README.md")
SPACE_FOLDERS = ("rnn_demo", "data")  # data/: the Train tab trains on the shipped text
SPACE_MODELS_FOLDER = "models"
# Extra files of a run folder worth publishing with a model.
MODEL_EXTRAS = ("metrics.json", "loss_curve.png")
SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)


class PublishError(RuntimeError):
    """Publishing failed; the message says why (never with the token in it)."""


def read_metrics(path: Path) -> dict:
    """A run's metrics.json as a dict; PublishError when it is unreadable or not a JSON object."""
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PublishError(f"{path} is unreadable: {describe_os_error(error)}") from None
    if not isinstance(metrics, dict):
        raise PublishError(f"{path} does not hold a JSON object")
    return metrics


def _staging_error(target: Path, error: Exception) -> PublishError:
    """A write into a staging folder failed (disk full, no permission): one sentence naming the target."""
    return PublishError(f"Could not write {target}: {describe_os_error(error)}")


@dataclass(frozen=True)
class PlannedFile:
    path_in_repo: str
    source: Path

    @property
    def size(self) -> int:
        return self.source.stat().st_size


# ---- the model card ---------------------------------------------------------------------------


def writes_poems(metrics: dict | None) -> bool:
    """Whether a run's metrics.json says it trained on a poem corpus (data/tang)."""
    data = (metrics or {}).get("data")
    return isinstance(data, dict) and data.get("source") in POEM_CORPORA


def poem_samples(model: CharRNN) -> str:
    """A regular poem of each form (rhyme and tones on, temperature 0.8, seed 0), for a poem model's card."""
    from rnn_demo.generation.sampling import generate
    from rnn_demo.poetry.rhyme import rhyme_book
    from rnn_demo.poetry.rules import FORMS, PoemRules

    samples = []
    for key, form in FORMS.items():
        rules = PoemRules(form, model.vocab, rhyme_book(), rhyme=True, tones=True)
        poem = generate(model, "\n\n无题\n", form.length, temperature=0.8, seed=0, allowed=rules)
        samples.append(f"**{form.name}** (`{key}`, rhyme and tones, seed 0):\n\n```text\n{poem.rstrip()}\n```")
    return "\n\n".join(samples)


def render_model_card(model: CharRNN, metrics: dict | None, repo_id: str) -> str:
    """A model card (README.md) with the real metrics, the training command and samples."""
    from huggingface_hub import ModelCard, ModelCardData

    from rnn_demo.generation.sampling import generate

    poems = writes_poems(metrics)
    metrics = metrics or {}
    cell_names = {"rnn": "hand-written Elman RNN (identical to torch.nn.RNN)", "gru": "GRU", "lstm": "LSTM"}
    data = ModelCardData(
        library_name="rnn-demo",
        license="mit",
        pipeline_tag="text-generation",
        datasets=[] if poems else ["karpathy/tiny_shakespeare"],
        language=["zh"] if poems else ["en"],
        tags=["char-rnn", "rnn", model.cell, "text-generation", "pytorch_model_hub_mixin"] + (["poetry"] if poems else []),
    )
    rows = [
        ("cell", cell_names[model.cell]),
        ("layers x hidden size", f"{model.num_layers} x {model.hidden_size}"),
        ("parameters", f"{model.num_parameters():,}"),
        ("vocabulary", f"{model.vocab_size} characters"),
    ]
    for key, label in (("val_loss", "validation loss"), ("test_loss", "test loss")):
        if key in metrics:
            bpc = metrics.get(key.replace("loss", "bpc"))
            rows.append((label, f"{metrics[key]:.4f} nats/char ({bpc:.3f} bits/char)" if bpc else f"{metrics[key]:.4f}"))
    if "unigram_val_loss" in metrics:
        rows.append(("unigram baseline (validation)", f"{metrics['unigram_val_loss']:.4f} nats/char"))
    for key, label in (("chars_seen", "characters trained on"), ("train_seconds", "training time (s)"), ("device", "device")):
        if key in metrics:
            value = metrics[key]
            rows.append((label, f"{value:,}" if isinstance(value, int) else str(value)))
    table = "\n".join(f"| {label} | {value} |" for label, value in rows)
    if poems:
        samples = poem_samples(model)
        corpus = ("the Tang poems of 全唐诗 (the npm package chinese-poetry, in Simplified script; "
                  "data/README.md of the rnn-demo repository)")
        title = "Tang poems"
        use = f"Or write poems with it in the web demo (`/poem`): `{MODELS_ENV}={repo_id} python app.py`."
    else:
        samples = "\n\n".join(
            f"**temperature {t}** (seed 0):\n\n```text\nROMEO:{generate(model, 'ROMEO:', 240, temperature=t, seed=0)}\n```"
            for t in SAMPLE_TEMPERATURES
        )
        corpus = "[karpathy/tiny_shakespeare](https://huggingface.co/datasets/karpathy/tiny_shakespeare)"
        title = "tiny shakespeare"
        use = f"Or serve it in the web demo: `{MODELS_ENV}={repo_id} python app.py`."
    example_prompt = "\\n\\n" if poems else "ROMEO:"  # as written in the card's Python
    command = metrics.get("command") or "(not recorded)"
    body = f"""
# Character-level {model.cell.upper()} trained on {title}

A {model.num_layers}-layer {cell_names[model.cell]} language model over characters, trained on
{corpus} (losses over the whole validation / test split read as one stream, the state carried).

| | |
|---|---|
{table}

## Use it

```python
from rnn_demo.model import CharRNN
from rnn_demo.sampling import generate

model = CharRNN.from_pretrained("{repo_id}")
print(generate(model, "{example_prompt}", 300, temperature=0.8, seed=0))
```

{use}

## Training

```bash
{command}
```

## Samples

{samples}
"""
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{body}"))


# ---- planning ---------------------------------------------------------------------------------


def plan_model(model_dir: Path, repo_id: str, staging: Path) -> list[PlannedFile]:
    """Stage the model folder's files and a generated card in ``staging``; return the plan."""
    if not (model_dir / CONFIG_NAME).is_file():
        raise PublishError(f"{model_dir} is not a model folder (no {CONFIG_NAME})")
    try:
        model = CharRNN.from_pretrained(model_dir)
    except CheckpointError as error:
        raise PublishError(f"Cannot publish {model_dir}: {error}") from None
    metrics = None
    if (model_dir / "metrics.json").is_file():
        metrics = read_metrics(model_dir / "metrics.json")
    try:
        for name in (WEIGHTS_NAME, CONFIG_NAME, *MODEL_EXTRAS):
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, staging / name)
        (staging / "README.md").write_text(render_model_card(model, metrics, repo_id), encoding="utf-8")
    except OSError as error:
        raise _staging_error(staging, error) from None
    return [PlannedFile(p.name, p) for p in sorted(staging.iterdir())]


def plan_space(project_root: Path, model_repo: str | None) -> list[PlannedFile]:
    """Exactly the files a Space needs: the app, the library, requirements, the card and (unless
    the models come from a Hub repo) the shipped models. No tests, caches, venvs or run output."""
    planned = []
    for name in SPACE_FILES:
        path = project_root / name
        if not path.is_file():
            raise PublishError(f"{path} is missing; the Space cannot run without it")
        planned.append(PlannedFile(name, path))
    folders = list(SPACE_FOLDERS) + ([] if model_repo else [SPACE_MODELS_FOLDER])
    for folder in folders:
        root = project_root / folder
        if not root.is_dir():
            raise PublishError(f"{root} is missing; the Space cannot run without it")
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith((".pyc", ".tmp")):
                planned.append(PlannedFile(path.relative_to(project_root).as_posix(), path))
    return planned


def describe_plan(kind: str, repo_id: str, files: list[PlannedFile], private: bool) -> str:
    total = sum(f.size for f in files)
    lines = [f"{kind} repo {repo_id} ({'private' if private else 'public'}): {len(files)} files, {total / 1e6:.2f} MB"]
    lines += [f"  {f.size:>12,}  {f.path_in_repo}" for f in files]
    return "\n".join(lines)


# ---- pushing ----------------------------------------------------------------------------------


def check_repo_id(repo_id: str) -> None:
    """Refuse anything that is not USER/NAME with a clear :class:`PublishError`."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise PublishError(f"{repo_id!r} is not a valid repo id (USER/NAME): {error}") from None
    if "/" not in repo_id:
        raise PublishError(f"{repo_id!r} is not a valid repo id: use USER/NAME")


def _token() -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise PublishError("No Hugging Face token: set HF_TOKEN or run `hf auth login` first.")
    return token


def _upload(api, repo_id: str, repo_type: str, folder: Path, private: bool, space_sdk: str | None = None) -> str:
    """create_repo (if needed) + upload_folder; errors become one clear PublishError."""
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, space_sdk=space_sdk)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type=repo_type,
            folder_path=str(folder),
            commit_message=f"Upload from rnn_demo.publish ({repo_type})",
        )
    except Exception as error:  # network, auth, quota, name taken: the Hub's own message, shortened
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PublishError(f"Could not push to {repo_id} ({repo_type}): {reason}") from None
    return getattr(commit, "commit_url", None) or f"https://huggingface.co/{'spaces/' if repo_type == 'space' else ''}{repo_id}"


def push_model(model_dir: str | Path, repo_id: str, private: bool = False, dry_run: bool = False, api=None) -> str:
    """Push a model folder (weights, config, metrics, a generated card) to a Hub model repo."""
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="rnn-demo-model-") as staging:
        files = plan_model(Path(model_dir), repo_id, Path(staging))
        plan = describe_plan("model", repo_id, files, private)
        if dry_run:
            return plan
        api = api or HfApi(token=_token())
        url = _upload(api, repo_id, "model", Path(staging), private)
    return f"{plan}\npushed: {url}"


def push_space(
    space_id: str,
    model_repo: str | None = None,
    private: bool = False,
    dry_run: bool = False,
    project_root: Path = PROJECT_ROOT,
    api=None,
) -> str:
    """Create the Space if needed and upload exactly what it needs to run the demo."""
    from huggingface_hub import HfApi

    check_repo_id(space_id)
    if model_repo:
        check_repo_id(model_repo)
    files = plan_space(project_root, model_repo)
    plan = describe_plan("space", space_id, files, private)
    if model_repo:
        plan += f"\n  Space variable {MODELS_ENV}={model_repo} (the app loads its models from that repo)"
    if dry_run:
        return plan
    api = api or HfApi(token=_token())
    with tempfile.TemporaryDirectory(prefix="rnn-demo-space-") as staging:
        build_space_bundle(files, Path(staging), model_repo)
        url = _upload(api, space_id, "space", Path(staging), private, space_sdk="gradio")
        if model_repo:
            try:
                api.add_space_variable(space_id, MODELS_ENV, model_repo)
            except Exception as error:
                raise PublishError(f"Uploaded, but could not set {MODELS_ENV} on {space_id}: {error}") from None
    return f"{plan}\npushed: {url}"


def build_space_bundle(files: list[PlannedFile], target: Path, model_repo: str | None = None) -> None:
    """Copy the planned files into ``target`` (the folder that is uploaded); with a model repo,
    the Space card names it under ``models`` so the Hub links the two."""
    from huggingface_hub import SpaceCard

    try:
        for planned in files:
            destination = target / planned.path_in_repo
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(planned.source, destination)
        if model_repo:
            card = SpaceCard.load(target / "README.md")
            card.data.models = [model_repo]
            card.save(target / "README.md")
    except OSError as error:
        raise _staging_error(target, error) from None


# ---- shipping a model in the repository's zoo ----------------------------------------------------

STORAGE_DTYPES = ("float32", "float16", "bfloat16")
MAX_STORAGE_LOSS_CHANGE = 0.002  # nats/char: how much storing in 16 bits may move the validation loss


def export_to_zoo(model_dir: str | Path, models_dir: str | Path, dtype: str = "float16", data: str | None = None) -> Path:
    """Copy a trained model into ``models_dir/<cell>-h<size>/`` (a poem model into
    ``<corpus>-<cell>-h<size>/``, e.g. ``tang-lstm-h256``) with its weights stored as ``dtype``.

    The validation loss is measured again after the round trip through ``dtype`` (loading always
    gives float32); if it moves by more than MAX_STORAGE_LOSS_CHANGE the export is refused.
    ``metrics.json`` gains ``weights_dtype`` and ``val_loss_stored``. The folder is replaced whole.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    from rnn_demo.training.data import load_text_splits
    from rnn_demo.training.loop import evaluate

    if dtype not in STORAGE_DTYPES:
        raise PublishError(f"--dtype must be one of {', '.join(STORAGE_DTYPES)}, got {dtype!r}")
    model_dir, models_dir = Path(model_dir), Path(models_dir)
    if not (model_dir / CONFIG_NAME).is_file():
        raise PublishError(f"{model_dir} is not a model folder (no {CONFIG_NAME})")
    try:
        model = CharRNN.from_pretrained(model_dir)
    except CheckpointError as error:
        raise PublishError(f"Cannot ship {model_dir}: {error}") from None
    metrics_path = model_dir / "metrics.json"
    if not metrics_path.is_file():
        raise PublishError(f"{model_dir} has no metrics.json: ship finished training runs only")
    metrics = read_metrics(metrics_path)
    run_config = metrics.get("config")
    if not isinstance(run_config, dict) or not all(k in run_config for k in ("data", "text_column", "split")):
        raise PublishError(
            f"{metrics_path} lacks the run's config (data, text_column, split): is it from a training run?"
        )
    if not isinstance(metrics.get("val_loss"), (int, float)):
        raise PublishError(f"{metrics_path} has no val_loss: ship finished training runs only")
    source = data or run_config["data"]
    splits = load_text_splits(source, run_config["text_column"], run_config["split"])
    val_ids = torch.tensor(model.tokenizer.encode(splits.validation), dtype=torch.long)

    # A poem model is named after its corpus: it never takes a text model's <cell>-h<size> folder.
    name = (f"{Path(run_config['data']).name}-" if writes_poems(metrics) else "") + f"{model.cell}-h{model.hidden_size}"
    target = models_dir / name
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=models_dir))
    except OSError as error:
        raise _staging_error(target, error) from None
    try:
        model.save_pretrained(staging)
        weights = {k: v.to(getattr(torch, dtype)).contiguous() for k, v in model.state_dict().items()}
        if model.tie_weights:
            weights.pop("decoder.weight")
        save_file(weights, str(staging / WEIGHTS_NAME))
        stored = CharRNN.from_pretrained(staging)
        val_loss_stored = evaluate(stored, val_ids)
        change = abs(val_loss_stored - metrics["val_loss"])
        if change > MAX_STORAGE_LOSS_CHANGE:
            raise PublishError(
                f"Storing {name} as {dtype} moves its validation loss by {change:.4f} nats/char "
                f"(more than {MAX_STORAGE_LOSS_CHANGE}); ship it as float32 instead"
            )
        metrics.update(weights_dtype=dtype, val_loss_stored=round(val_loss_stored, 5))
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        if (model_dir / "loss_curve.png").is_file():
            shutil.copy2(model_dir / "loss_curve.png", staging / "loss_curve.png")
        (staging / "README.md").write_text(render_model_card(stored, metrics, f"models/{name}"), encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp makes it private; a shipped model is for everyone to read
        for path in staging.iterdir():
            path.chmod(0o644)
        replace_directory(staging, target)  # a WriteError naming target; the old folder stays
    except WriteError as error:
        raise PublishError(str(error)) from None
    except (OSError, SafetensorError) as error:  # disk full / no permission while staging
        raise _staging_error(target, error) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
