"""The model zoo: discovery from files, lazy thread-safe loading, clear messages when empty."""

import json
import shutil
import threading
from pathlib import Path

import pytest

from rnn_demo.model import CharRNN
from rnn_demo.serving.zoo import MODELS_ENV, ModelZoo, UnknownModelError, describe_model_folder


def copy_model(source, target):
    target.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "metrics.json"):
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    return target


def test_finds_every_model_folder_ordered_by_cell_then_size(app_models):
    zoo = ModelZoo(app_models)
    assert [(m.cell, m.hidden_size) for m in zoo.models()] == [("rnn", 32), ("lstm", 64), ("lstm", 256)]
    assert zoo.cells() == ["rnn", "lstm"]
    assert zoo.hidden_sizes("lstm") == [64, 256]
    assert zoo.hidden_sizes("gru") == []
    assert zoo.problems() == []


def test_model_info_comes_from_config_and_metrics(app_models):
    info = ModelZoo(app_models).info("lstm", 64)
    metrics = json.loads((app_models / "lstm-h64" / "metrics.json").read_text())
    assert info.name == "lstm-h64"
    assert info.num_layers == 1
    assert info.params == metrics["params"]
    assert info.val_bpc == pytest.approx(metrics["val_bpc"])
    assert info.test_bpc == pytest.approx(metrics["test_bpc"])
    assert info.train_seconds == pytest.approx(metrics["train_seconds"])
    assert info.size_bytes == (app_models / "lstm-h64" / "model.safetensors").stat().st_size


def test_table_is_json_and_hides_server_paths(app_models):
    table = ModelZoo(app_models).table()
    assert json.loads(json.dumps(table)) == table
    for row in table:
        assert {"cell", "hidden_size", "num_layers", "params", "val_bpc", "test_bpc", "size_bytes"} <= set(row)
        assert str(app_models) not in json.dumps(row)


def test_models_load_lazily_once_and_are_cached(app_models, monkeypatch):
    loaded = []
    real_from_pretrained = CharRNN.from_pretrained.__func__

    def from_pretrained(cls, path, *args, **kwargs):
        loaded.append(Path(path).name)
        return real_from_pretrained(cls, path, *args, **kwargs)

    monkeypatch.setattr(CharRNN, "from_pretrained", classmethod(from_pretrained))
    zoo = ModelZoo(app_models)
    assert loaded == []
    model = zoo.load("lstm", 64)
    assert isinstance(model, CharRNN) and not model.training
    assert (model.cell, model.hidden_size) == ("lstm", 64)
    assert zoo.load("lstm", 64) is model
    assert loaded == ["lstm-h64"]


def test_concurrent_first_requests_load_a_model_once(app_models, monkeypatch):
    calls = []
    original = CharRNN.from_pretrained.__func__

    def counting(cls, path, **kwargs):
        calls.append(path)
        return original(cls, path, **kwargs)

    monkeypatch.setattr(CharRNN, "from_pretrained", classmethod(counting))
    zoo = ModelZoo(app_models)
    results = []
    threads = [threading.Thread(target=lambda: results.append(zoo.load("rnn", 32))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(results) == 8 and all(model is results[0] for model in results)


@pytest.mark.parametrize(
    ("cell", "hidden_size", "message"),
    [
        ("gru", 64, "Unknown cell 'gru'; available: rnn, lstm"),
        ("lstm", 128, "No lstm model with hidden size 128; available: 64, 256"),
        ("../..", 64, "Unknown cell"),
    ],
)
def test_unknown_models_are_refused_by_name(app_models, cell, hidden_size, message):
    with pytest.raises(UnknownModelError, match=message.replace("(", r"\(")):
        ModelZoo(app_models).load(cell, hidden_size)


def test_a_single_model_folder_is_a_zoo_of_one(app_models):
    zoo = ModelZoo(app_models / "lstm-h64")
    assert [m.name for m in zoo.models()] == ["lstm-h64"]


def test_missing_and_empty_folders_give_a_clear_message(tmp_path):
    missing = ModelZoo(tmp_path / "nowhere")
    assert missing.models() == []
    assert missing.problems() == [f"The models folder {tmp_path / 'nowhere'} does not exist."]
    with pytest.raises(UnknownModelError, match="No models are available"):
        missing.load("lstm", 64)
    empty = ModelZoo(tmp_path)
    assert empty.models() == []
    assert "No model folders" in empty.problems()[0]


def test_broken_and_duplicate_folders_are_skipped_with_a_reason(app_models, tmp_path):
    root = tmp_path / "models"
    copy_model(app_models / "lstm-h64", root / "lstm-h64")
    copy_model(app_models / "lstm-h64", root / "lstm-h64-copy")
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{not json")
    no_weights = copy_model(app_models / "rnn-h32", root / "rnn-h32")
    (no_weights / "model.safetensors").unlink()
    (root / "notes").mkdir()  # not a model folder at all: ignored silently
    zoo = ModelZoo(root)
    assert [m.name for m in zoo.models()] == ["lstm-h64"]
    problems = "\n".join(zoo.problems())
    assert "Skipped broken: config.json is unreadable" in problems
    assert "Skipped rnn-h32: it has no model.safetensors" in problems
    assert "Skipped lstm-h64-copy: lstm-h64 is already the lstm with hidden size 64" in problems
    assert "notes" not in problems


def test_without_metrics_the_parameters_are_counted_from_the_config(app_models, tmp_path):
    folder = copy_model(app_models / "rnn-h32", tmp_path / "rnn-h32")
    (folder / "metrics.json").unlink()
    info = describe_model_folder(folder)
    assert info.params == CharRNN.from_pretrained(app_models / "rnn-h32").num_parameters()
    assert info.val_bpc is None and info.test_bpc is None and info.train_seconds is None


def test_environment_variable_overrides_the_default(tmp_path):
    assert ModelZoo.from_environment(tmp_path, environ={}).source == str(tmp_path)
    assert ModelZoo.from_environment(tmp_path, environ={MODELS_ENV: ""}).source == str(tmp_path)
    assert ModelZoo.from_environment(tmp_path, environ={MODELS_ENV: "/srv/models"}).source == "/srv/models"
    assert (
        ModelZoo.from_environment(tmp_path, environ={MODELS_ENV: "someone/rnn-models"}).source == "someone/rnn-models"
    )


def test_a_hub_repo_id_is_downloaded_once_then_read_like_a_folder(app_models):
    downloads = []

    def fake_download(repo_id):
        downloads.append(repo_id)
        return app_models

    zoo = ModelZoo("someone/rnn-models", download=fake_download)
    assert zoo.cells() == ["rnn", "lstm"]
    assert zoo.load("lstm", 64).hidden_size == 64
    assert downloads == ["someone/rnn-models"]


def test_a_single_model_hub_repo_is_named_after_the_repo(app_models, tmp_path):
    snapshot = copy_model(app_models / "lstm-h64", tmp_path / "snapshots" / "0123abcd")
    zoo = ModelZoo("someone/char-rnn-64", download=lambda repo_id: snapshot)
    assert [m.name for m in zoo.models()] == ["char-rnn-64"]


def test_an_unreachable_hub_repo_leaves_an_empty_zoo_with_the_reason():
    # Offline (conftest sets HF_HUB_OFFLINE): the real download fails at once, without network.
    zoo = ModelZoo("someone/surely-not-cached-rnn-models")
    assert zoo.models() == []
    assert zoo.problems()[0].startswith("Could not download the Hub repo 'someone/surely-not-cached-rnn-models'")


def test_an_unreachable_hub_repo_from_the_environment_falls_back_to_the_local_folder(app_models):
    zoo = ModelZoo.from_environment(app_models, environ={MODELS_ENV: "someone/surely-not-cached-rnn-models"})
    assert zoo.source == "someone/surely-not-cached-rnn-models"
    assert {m.name for m in zoo.models()} == {p.name for p in app_models.iterdir() if (p / "config.json").is_file()}
    assert zoo.problems()[0].startswith("Could not download the Hub repo 'someone/surely-not-cached-rnn-models'")
    assert f"Serving the local models in {app_models} instead." in zoo.problems()[0]
    zoo.load("lstm", 64)  # and they load


def test_poem_models_are_served_apart_from_the_others(app_models, tmp_path):
    root = tmp_path / "models"
    copy_model(app_models / "lstm-h64", root / "lstm-h64")
    poems = copy_model(app_models / "lstm-h64", root / "tang-lstm-h64")  # the same cell and size
    metrics = json.loads((poems / "metrics.json").read_text())
    metrics["data"] = {**metrics["data"], "source": "data/tang"}
    (poems / "metrics.json").write_text(json.dumps(metrics))
    text_zoo, poem_zoo = ModelZoo(root), ModelZoo(root, poems=True)
    assert [m.name for m in text_zoo.models()] == ["lstm-h64"] and text_zoo.problems() == []
    assert [m.name for m in poem_zoo.models()] == ["tang-lstm-h64"] and poem_zoo.problems() == []
    assert poem_zoo.info("lstm", 64).writes_poems and not text_zoo.info("lstm", 64).writes_poems
    assert ModelZoo.from_environment(root, environ={}, poems=True).models() == poem_zoo.models()
    assert ModelZoo(app_models, poems=True).models() == []
