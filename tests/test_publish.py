"""Publishing to the Hub and to a Space, with HfApi replaced at the boundary (no network)."""

import shutil
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from huggingface_hub import SpaceCard

from rnn_demo.cli import publish as publish_cli
from rnn_demo.hub import publish
from rnn_demo.hub.publish import PublishError, push_model, push_space
from rnn_demo.serving.zoo import ModelZoo


class FakeHfApi:
    """Records the calls publish makes; snapshots the uploaded folder (it is deleted afterwards)."""

    def __init__(self, fail_with: Exception | None = None):
        self.calls = []
        self.uploaded = {}
        self.fail_with = fail_with

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        if self.fail_with:
            raise self.fail_with

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))
        root = kwargs["folder_path"]

        self.uploaded = {p.relative_to(root).as_posix(): p.read_bytes() for p in Path(root).rglob("*") if p.is_file()}

    def add_space_variable(self, repo_id, key, value):
        self.calls.append(("add_space_variable", repo_id, {"key": key, "value": value}))


@pytest.fixture
def fake_project(tmp_path, trained_run):
    """A project tree with the Space's files, a shipped model, and junk that must not be uploaded."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("app.py", "requirements.txt", "README.md"):
        shutil.copy2(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "rnn_demo", root / "rnn_demo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "data", root / "data")
    shutil.copytree(trained_run[0], root / "models" / "lstm-h64")
    for junk in ("tests/test_x.py", ".venv/bin/python", "runs/x/model.safetensors", ".git/HEAD",
                 "rnn_demo/__pycache__/model.cpython-311.pyc", ".pytest_cache/v"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("junk")
    return root


def test_model_dry_run_lists_the_files_and_touches_nothing(trained_run, capsys):
    out, metrics = trained_run
    report = push_model(out, "someone/char-rnn", dry_run=True, api=None)
    assert report.startswith("model repo someone/char-rnn (public): 5 files")
    for name in ("model.safetensors", "config.json", "README.md", "metrics.json", "loss_curve.png"):
        assert name in report
    assert "training_state" not in report and "metrics.jsonl" not in report


def test_model_card_renders_real_metrics_command_and_samples(trained_run):
    from rnn_demo.model import CharRNN

    out, metrics = trained_run
    card = publish.render_model_card(CharRNN.from_pretrained(out), metrics, "someone/char-rnn")
    assert card.startswith("---\n") and "karpathy/tiny_shakespeare" in card
    assert f"{metrics['val_loss']:.4f} nats/char" in card and f"{metrics['test_loss']:.4f} nats/char" in card
    assert f"{metrics['params']:,}" in card
    assert 'CharRNN.from_pretrained("someone/char-rnn")' in card
    assert card.count("**temperature") == 3 and "ROMEO:" in card


def test_push_model_creates_the_repo_and_uploads_the_staged_folder(trained_run):
    api = FakeHfApi()
    report = push_model(trained_run[0], "someone/char-rnn", private=True, api=api)
    (name, repo_id, kwargs), (upload, _, upload_kwargs) = api.calls
    assert (name, repo_id) == ("create_repo", "someone/char-rnn")
    assert kwargs["repo_type"] == "model" and kwargs["private"] is True and kwargs["exist_ok"] is True
    assert upload == "upload_folder" and upload_kwargs["repo_type"] == "model"
    assert set(api.uploaded) == {"model.safetensors", "config.json", "README.md", "metrics.json", "loss_curve.png"}
    assert api.uploaded["model.safetensors"] == (trained_run[0] / "model.safetensors").read_bytes()
    assert "pushed: https://huggingface.co/someone/char-rnn" in report


def test_a_rejected_push_is_one_clear_error(trained_run):
    api = FakeHfApi(fail_with=RuntimeError("401 Client Error: Unauthorized\nlong server details"))
    with pytest.raises(PublishError, match=r"Could not push to someone/char-rnn \(model\): 401 Client Error: Unauthorized$"):
        push_model(trained_run[0], "someone/char-rnn", api=api)


def test_missing_token_is_a_clear_error(trained_run, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(PublishError, match="HF_TOKEN"):
        push_model(trained_run[0], "someone/char-rnn")


def test_the_token_is_never_printed(trained_run, monkeypatch, capsys):
    import huggingface_hub

    secret = "hf_THIS_IS_A_SECRET_TOKEN_123"
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: secret)
    # offline (conftest): the real HfApi fails; the message must not carry the token
    assert publish_cli.main(["model", "--model-dir", str(trained_run[0]), "--repo-id", "someone/char-rnn"]) == 2
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
    assert captured.err.startswith("error: Could not push to someone/char-rnn")


@pytest.mark.parametrize("repo_id", ["no-owner", "bad id/name", "a/b/c", ""])
def test_invalid_repo_ids_are_refused_before_anything_happens(trained_run, repo_id):
    with pytest.raises(PublishError, match="not a valid repo id"):
        push_model(trained_run[0], repo_id, dry_run=True)


def test_cli_model_dry_run_and_errors(trained_run, tmp_path, capsys):
    assert publish_cli.main(["model", "--model-dir", str(trained_run[0]), "--repo-id", "me/m", "--dry-run"]) == 0
    assert "model repo me/m" in capsys.readouterr().out
    assert publish_cli.main(["model", "--model-dir", str(tmp_path), "--repo-id", "me/m", "--dry-run"]) == 2
    assert "is not a model folder" in capsys.readouterr().err


def test_space_dry_run_lists_exactly_what_the_space_needs(fake_project):
    files = {f.path_in_repo for f in publish.plan_space(fake_project, model_repo=None)}
    assert {"app.py", "requirements.txt", "README.md", "rnn_demo/model/char_rnn.py", "rnn_demo/model/rnn.py",
            "models/lstm-h64/model.safetensors", "models/lstm-h64/config.json", "data/tinyshakespeare.txt"} <= files
    assert not [f for f in files if f.startswith(("tests/", ".venv/", "runs/", ".git/", ".pytest_cache/"))]
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    with_repo = {f.path_in_repo for f in publish.plan_space(fake_project, model_repo="me/models")}
    assert not [f for f in with_repo if f.startswith("models/")]


def test_push_space_creates_a_gradio_space_and_uploads_the_bundle(fake_project):
    api = FakeHfApi()
    push_space("me/demo", project_root=fake_project, api=api)
    (name, repo_id, kwargs), (upload, _, upload_kwargs) = api.calls
    assert (name, repo_id) == ("create_repo", "me/demo")
    assert kwargs["repo_type"] == "space" and kwargs["space_sdk"] == "gradio" and kwargs["exist_ok"] is True
    assert upload_kwargs["repo_type"] == "space"
    assert "app.py" in api.uploaded and "models/lstm-h64/model.safetensors" in api.uploaded
    assert not [f for f in api.uploaded if f.startswith(("tests/", ".venv/", "runs/"))]


def test_push_space_with_a_model_repo_sets_the_variable_and_links_the_card(fake_project, tmp_path):
    api = FakeHfApi()
    push_space("me/demo", model_repo="me/models", project_root=fake_project, api=api)
    assert ("add_space_variable", "me/demo", {"key": "RNN_DEMO_MODELS", "value": "me/models"}) in api.calls
    assert not [f for f in api.uploaded if f.startswith("models/")]
    card_path = tmp_path / "README.md"
    card_path.write_bytes(api.uploaded["README.md"])
    assert SpaceCard.load(card_path).data.models == ["me/models"]


def test_ship_to_zoo_stores_half_precision_and_checks_the_loss(trained_run, tmp_path, small_corpus):
    import json

    from rnn_demo.model import CharRNN

    out, metrics = trained_run
    target = publish.export_to_zoo(out, tmp_path / "models", "float16")
    assert target.name == "lstm-h64"
    assert {"model.safetensors", "config.json", "README.md", "metrics.json", "loss_curve.png"} == {
        p.name for p in target.iterdir()
    }
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(target / "model.safetensors").values()} == {__import__("torch").float16}
    assert (target / "model.safetensors").stat().st_size < 0.6 * (out / "model.safetensors").stat().st_size
    shipped = json.loads((target / "metrics.json").read_text())
    assert shipped["weights_dtype"] == "float16"
    assert abs(shipped["val_loss_stored"] - metrics["val_loss"]) < publish.MAX_STORAGE_LOSS_CHANGE
    model = CharRNN.from_pretrained(target)
    assert all(p.dtype == __import__("torch").float32 for p in model.parameters())
    # shipping again replaces the folder whole, leaving no temporaries
    publish.export_to_zoo(out, tmp_path / "models", "float32")
    assert json.loads((target / "metrics.json").read_text())["weights_dtype"] == "float32"
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["lstm-h64"]


@pytest.mark.slow
def test_a_poem_model_ships_under_its_corpus_name_with_poems_on_its_card(tmp_path, monkeypatch):
    import json

    from conftest import REPO_ROOT

    from rnn_demo.poetry.rhyme import rhyme_book
    from rnn_demo.poetry.rules import FORMS, check
    from rnn_demo.serving.zoo import ModelZoo
    from rnn_demo.training.loop import TrainConfig, train

    monkeypatch.chdir(REPO_ROOT)  # the run names its text as the presets do: data/tang
    config = TrainConfig(data="data/tang", cell="lstm", hidden_size=8, num_layers=1, batch_size=8, seq_len=16,
                         max_steps=2, eval_every=2, device="cpu")
    train(config, tmp_path / "run", show_progress=False, log=lambda message: None)
    target = publish.export_to_zoo(tmp_path / "run", tmp_path / "models", "float16")
    assert target.name == "tang-lstm-h8"
    card = (target / "README.md").read_text(encoding="utf-8")
    assert "trained on Tang poems" in card and "language:\n- zh" in card
    poems = [block.split("```text\n")[1].split("\n```")[0] for block in card.split("**")[1:] if "```text" in block]
    assert len(poems) == 4
    for poem, form in zip(poems, FORMS.values()):
        report = check(poem, form, rhyme_book())
        assert report.form_ok and report.rhymes and report.tones_ok, poem
    assert json.loads((target / "metrics.json").read_text())["data"]["source"] == "data/tang"
    assert [m.name for m in ModelZoo(tmp_path / "models", poems=True).models()] == ["tang-lstm-h8"]
    assert ModelZoo(tmp_path / "models").models() == []


def test_ship_to_zoo_refuses_unfinished_runs_and_bad_dtypes(trained_run, tmp_path):
    with pytest.raises(PublishError, match="float16"):
        publish.export_to_zoo(trained_run[0], tmp_path, "int8")
    half_done = tmp_path / "half"
    shutil.copytree(trained_run[0], half_done)
    (half_done / "metrics.json").unlink()
    with pytest.raises(PublishError, match="no metrics.json"):
        publish.export_to_zoo(half_done, tmp_path / "models")


SPACE_SMOKE_SCRIPT = """
import json
import sys

import app
from gradio_client import Client
from rnn_demo.serving.training_jobs import SHIPPED_TEXT, shipped_text

_, url, _ = app.demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=int(sys.argv[1]), prevent_thread_lock=True, quiet=True))
try:
    client = Client(url, verbose=False, analytics_enabled=False)
    models = client.predict(api_name="/models")
    first = models[0]
    text = client.predict("ROMEO:", first["cell"], first["hidden_size"], 0.8, 40, 0, 1.0, 7, api_name="/generate")
    print("RESULT " + json.dumps({"app_file": app.__file__, "models": len(models), "text": text,
                                  "shipped_text": [str(SHIPPED_TEXT), len(shipped_text())]}))
finally:
    app.demo.close()
"""


@pytest.mark.slow
def test_the_space_bundle_runs_on_its_own(tmp_path, pick_free_port):
    """Build exactly what `publish space` uploads, then serve it from there, offline, and call it."""
    import json
    import os
    import subprocess
    import sys

    bundle = tmp_path / "space"
    publish.build_space_bundle(publish.plan_space(REPO_ROOT, model_repo=None), bundle)
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RNN_DEMO_MODELS")}
    environment["HF_HUB_OFFLINE"] = "1"
    finished = subprocess.run(
        [sys.executable, "-c", SPACE_SMOKE_SCRIPT, str(pick_free_port())],
        cwd=bundle, env=environment, capture_output=True, text=True, timeout=180,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    [line] = [line for line in finished.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(line[len("RESULT "):])
    assert result["app_file"] == str(bundle / "app.py")  # the bundle's own code, not the repository's
    assert result["models"] == len(ModelZoo(REPO_ROOT / "models").models())  # the text models
    assert result["text"].startswith("ROMEO:") and len(result["text"]) == len("ROMEO:") + 40
    assert result["shipped_text"] == [str(bundle / "data" / "tinyshakespeare.txt"), 1_115_394]  # the Train tab's
