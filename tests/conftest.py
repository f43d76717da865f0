"""Test set-up: no network, ever, and shared fixtures (the corpus, a small trained model)."""

import os
import tempfile

# Must happen before gradio / huggingface_hub / datasets are imported anywhere.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="rnn-demo-hf-home-"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_SHAKESPEARE = Path(
    os.environ.get("TINY_SHAKESPEARE", REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare.txt")
)


@pytest.fixture(scope="session")
def shakespeare_path() -> Path:
    """The full tiny shakespeare text (the exact text of the Hub dataset)."""
    if not TINY_SHAKESPEARE.is_file():
        pytest.fail(f"tiny shakespeare not found at {TINY_SHAKESPEARE}; set TINY_SHAKESPEARE=/path/to/it")
    return TINY_SHAKESPEARE


@pytest.fixture(scope="session")
def small_corpus(shakespeare_path, tmp_path_factory) -> Path:
    """The first 200,000 characters of tiny shakespeare: enough to learn from in seconds."""
    path = tmp_path_factory.mktemp("corpus") / "shakespeare-200k.txt"
    path.write_text(shakespeare_path.read_text(encoding="utf-8")[:200_000], encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained_run(small_corpus, tmp_path_factory):
    """A 1x64 LSTM trained for 300 steps on the small corpus: (run folder, metrics)."""
    from rnn_demo.training import TrainConfig, train

    out = tmp_path_factory.mktemp("trained") / "lstm-h64"
    config = TrainConfig(
        data=str(small_corpus),
        cell="lstm",
        hidden_size=64,
        num_layers=1,
        seq_len=64,
        batch_size=32,
        lr=1e-2,
        warmup_steps=20,
        max_steps=300,
        eval_every=150,
        seed=0,
        device="cpu",
    )
    metrics = train(config, out, show_progress=False, log=lambda message: None)
    return out, metrics


@pytest.fixture(scope="session")
def trained_model(trained_run):
    from rnn_demo.model import CharRNN

    return CharRNN.from_pretrained(trained_run[0])
