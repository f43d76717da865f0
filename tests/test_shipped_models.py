"""The models shipped in models/: they load, they are as good as their metrics.json says, and small."""

import json

import pytest
import torch
from conftest import REPO_ROOT

from rnn_demo.model import CharRNN
from rnn_demo.training.data import split_text
from rnn_demo.training.loop import evaluate

MODELS = sorted(p for p in (REPO_ROOT / "models").iterdir() if (p / "config.json").is_file())
MAX_TOTAL_BYTES = 25_000_000


def test_models_are_shipped_and_small():
    assert MODELS, "models/ holds no model"
    assert sum((p / "model.safetensors").stat().st_size for p in MODELS) <= MAX_TOTAL_BYTES


@pytest.mark.slow
@pytest.mark.parametrize("folder", MODELS, ids=[p.name for p in MODELS])
def test_validation_loss_re_measured_matches_metrics_json(folder, shakespeare_path):
    model = CharRNN.from_pretrained(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert folder.name == f"{model.cell}-h{model.hidden_size}"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert metrics["params"] == model.num_parameters()
    validation = split_text(shakespeare_path.read_text(encoding="utf-8"))[1]
    val_loss = evaluate(model, torch.tensor(model.tokenizer.encode(validation)))
    assert val_loss == pytest.approx(metrics["val_loss"], abs=0.005)
    assert val_loss < metrics["unigram_val_loss"] - 1.5  # far better than character frequencies


def test_quality_improves_with_hidden_size_within_each_cell():
    by_cell = {}
    for folder in MODELS:
        metrics = json.loads((folder / "metrics.json").read_text())
        by_cell.setdefault(metrics["model"]["cell"], []).append((metrics["model"]["hidden_size"], metrics["val_loss"]))
    for cell, results in by_cell.items():
        losses = [loss for _, loss in sorted(results)]
        assert losses == sorted(losses, reverse=True), f"{cell}: {sorted(results)}"
