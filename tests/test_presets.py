"""--preset: every shipped model has its recipe, and the recipe is the one it was trained with."""

import dataclasses
import json
from pathlib import Path

import pytest

from rnn_demo.cli.train import main as train_main
from rnn_demo.training.loop import TrainConfig
from rnn_demo.training.presets import PRESETS, preset_settings

MODELS = Path(__file__).resolve().parent.parent / "models"
SHIPPED = sorted(p for p in MODELS.iterdir() if (p / "metrics.json").is_file())


def preset_name(folder: Path) -> str:
    cell, size = folder.name.split("-h")
    return f"{cell}-{size}"


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_model_has_the_preset_it_was_trained_with(folder):
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    recorded = metrics["config"]
    preset = preset_settings(preset_name(folder))
    config = dataclasses.asdict(TrainConfig(**preset))
    defaults = dataclasses.asdict(TrainConfig())  # fields added after a model was trained had these values
    for name, value in config.items():
        if name in ("data", "max_steps", "time_budget", "device"):
            continue
        trained = recorded.get(name, defaults[name])
        assert value == trained, f"{folder.name}: --{name} is {value!r} in the preset, {trained!r} in training"
    # A run under a time budget is pinned to the steps it reached; a step-counted run to its own count.
    assert preset["max_steps"] == (recorded["max_steps"] or metrics["steps"])
    assert "time_budget" not in preset


def test_presets_are_valid_configs():
    for name, settings in PRESETS.items():
        TrainConfig(**settings).validate()


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(KeyError, match="lstm-256"):
        preset_settings("lstm-1024")


def test_cli_preset_with_overrides_and_its_errors(small_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--preset", "gru-512", "--data", str(small_corpus), "--out", str(out), "--quiet",
            "--hidden-size", "16", "--seq-len", "16", "--batch-size", "4", "--max-steps", "2", "--eval-every", "2",
            "--no-variational-dropout"]
    assert train_main(argv) == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["cell"] == "gru" and config["weight_drop"] == 0.25 and config["lr"] == 2e-3  # from the preset
    assert config["hidden_size"] == 16 and config["variational_dropout"] is False  # overridden
    capsys.readouterr()
    assert train_main(["--preset", "gru-512", "--resume", "--out", str(out), "--quiet"]) == 2
    assert "--preset cannot be combined with --resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_main(["--preset", "no-such-model", "--out", str(out)])
    assert "invalid choice: 'no-such-model'" in capsys.readouterr().err
