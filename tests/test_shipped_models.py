"""The models shipped in models/: they load, they are as good as their metrics.json says, and small."""

import json

import pytest
import torch
from conftest import REPO_ROOT

from rnn_demo.model import CharRNN
from rnn_demo.serving.zoo import ModelZoo

MODELS = sorted(p for p in (REPO_ROOT / "models").iterdir() if (p / "config.json").is_file())
TEXT_MODELS = [info.path for info in ModelZoo(REPO_ROOT / "models").models()]  # the poem models aside
MAX_TOTAL_BYTES = 40_000_000


def test_models_are_shipped_and_small():
    assert MODELS, "models/ holds no model"
    assert sum((p / "model.safetensors").stat().st_size for p in MODELS) <= MAX_TOTAL_BYTES


@pytest.mark.parametrize("folder", MODELS, ids=[p.name for p in MODELS])
def test_a_shipped_model_loads_as_its_metrics_json_describes_it(folder):
    # Its validation loss is measured again, to 2e-5 nats, by tests/test_analysis.py's scoring test.
    model = CharRNN.from_pretrained(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    corpus = "tang-" if metrics["data"]["source"] == "data/tang" else ""  # a poem model is named after its corpus
    assert folder.name == f"{corpus}{model.cell}-h{model.hidden_size}"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert metrics["params"] == model.num_parameters()
    assert metrics["val_loss"] < metrics["unigram_val_loss"] - 1.5  # far better than character frequencies


def test_quality_improves_with_hidden_size_within_each_cell():
    by_cell = {}
    for folder in TEXT_MODELS:
        metrics = json.loads((folder / "metrics.json").read_text())
        by_cell.setdefault(metrics["model"]["cell"], []).append((metrics["model"]["hidden_size"], metrics["val_loss"]))
    for cell, results in by_cell.items():
        losses = [loss for _, loss in sorted(results)]
        assert losses == sorted(losses, reverse=True), f"{cell}: {sorted(results)}"
