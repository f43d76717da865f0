"""Test set-up: no network, ever, and shared fixtures (the corpus, a small trained model)."""

import os
import tempfile

# Must happen before gradio / huggingface_hub / datasets are imported anywhere.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="rnn-demo-hf-home-"))
# The test models are tiny: one thread is as fast, and it does not collapse when the machine
# is busy (OpenMP threads spin-waiting on an oversubscribed CPU). Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition()`` until it is true (True) or ``timeout`` seconds pass (False)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def cpu_seconds(stat_path: str) -> float:
    """User + system CPU seconds from a Linux /proc .../stat file (a process's or a thread's)."""
    with open(stat_path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


TINY_SHAKESPEARE = REPO_ROOT / "data" / "tinyshakespeare.txt"  # shipped with the repository (data/README.md)


@pytest.fixture(scope="session")
def shakespeare_path() -> Path:
    """The full tiny shakespeare text (the exact text of the Hub dataset)."""
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
    from rnn_demo.training.loop import TrainConfig, train

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
def worker():
    """A generation worker for the tests that stream (tests/test_worker.py makes its own per test)."""
    from rnn_demo.serving.worker import GenerationWorker

    return GenerationWorker()


@pytest.fixture(scope="session")
def trained_model(trained_run):
    from rnn_demo.model import CharRNN

    return CharRNN.from_pretrained(trained_run[0])


# ---- the demo app (tests/test_zoo.py, tests/test_app.py, tests/test_browser.py) ----------------

MODEL_FILES = ("config.json", "model.safetensors", "metrics.json", "README.md")

APP_MODEL_NAMES = ("rnn-h32", "lstm-h64", "lstm-h256")


@pytest.fixture(scope="session")
def app_models(request, small_corpus, tmp_path_factory) -> Path:
    """A models folder laid out like the shipped one: rnn-h32, lstm-h64 (``trained_run``) and lstm-h256.

    The two new models train for a few seconds only: the app tests need real model folders,
    not good text. lstm-h64 matches the README's API examples (and a shipped model). Set
    RNN_DEMO_TEST_MODELS to a folder to keep them between runs (filled on the first run, reused after).
    """
    import shutil

    from rnn_demo.training.loop import TrainConfig, train

    kept = os.environ.get("RNN_DEMO_TEST_MODELS")
    if kept and all((Path(kept) / name / "metrics.json").is_file() for name in APP_MODEL_NAMES):
        return Path(kept)
    trained_run = request.getfixturevalue("trained_run")
    root = Path(kept) if kept else tmp_path_factory.mktemp("app-models")
    shutil.rmtree(root / "lstm-h64", ignore_errors=True)
    (root / "lstm-h64").mkdir(parents=True)
    for name in MODEL_FILES:
        shutil.copy2(trained_run[0] / name, root / "lstm-h64" / name)
    for cell, hidden_size, steps in (("rnn", 32, 40), ("lstm", 256, 20)):
        config = TrainConfig(
            data=str(small_corpus),
            cell=cell,
            hidden_size=hidden_size,
            num_layers=1,
            seq_len=32,
            batch_size=16,
            lr=1e-2,
            warmup_steps=5,
            max_steps=steps,
            eval_every=steps,
            seed=0,
            device="cpu",
        )
        shutil.rmtree(root / f"{cell}-h{hidden_size}", ignore_errors=True)
        train(config, root / f"{cell}-h{hidden_size}", show_progress=False, log=lambda message: None)
    return root


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def pick_free_port():
    """A function that returns a local TCP port nobody listens on."""
    return free_port


@pytest.fixture(scope="session")
def app_url(app_models):
    """The demo serving ``app_models`` on a free local port for the whole session: its URL."""
    import app
    from rnn_demo.serving.zoo import ModelZoo

    demo = app.build_demo(ModelZoo(app_models))
    _, url, _ = demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True))
    try:
        yield url
    finally:
        demo.close()


# A model slow enough that a 2,000-character stream is still running when a cancel arrives (an
# untrained 2x768 LSTM: ~2 ms a character here; the test models stream 2,000 characters in less
# than a client takes to cancel).
SLOW_MODEL = dict(cell="lstm", hidden_size=768)


@pytest.fixture(scope="session")
def slow_models(app_models, tmp_path_factory) -> Path:
    """A models folder with one model, SLOW_MODEL (untrained, with the test models' vocabulary)."""
    import torch

    from rnn_demo.model import CharRNN

    vocab = CharRNN.from_pretrained(app_models / "lstm-h64").vocab
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CharRNN(vocab, num_layers=2, **SLOW_MODEL)
    folder = tmp_path_factory.mktemp("slow-models") / "lstm-h768"
    model.save_pretrained(folder)
    return folder.parent


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False, analytics_enabled=False)
