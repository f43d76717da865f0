"""Limits and safety of the served app: a full queue refuses at once, requests cannot reach
paths or models outside the zoo, and the server keeps serving afterwards."""

import threading
import time

import httpx
import pytest
from gradio_client import Client

import app
from rnn_demo.serving import lifecycle
from rnn_demo.serving.zoo import ModelZoo

GOOD = {
    "prompt": "ROMEO:",
    "cell": "lstm",
    "hidden_size": 64,
    "temperature": 0.8,
    "max_new_chars": 20,
    "top_k": 0,
    "top_p": 1.0,
    "seed": 1,
}


class GatedZoo(ModelZoo):
    """A zoo whose reading of a model's engine weights waits for ``gate``: requests stay busy for as
    long as a test wants."""

    def __init__(self, source):
        super().__init__(source)
        self.gate = threading.Event()
        self.waiting = threading.Semaphore(0)

    def weights(self, cell, hidden_size):
        self.waiting.release()
        assert self.gate.wait(timeout=60), "the test never opened the gate"
        return super().weights(cell, hidden_size)


@pytest.fixture
def gated_app(app_models, pick_free_port):
    """The app with one generation at a time and one waiting: (zoo, url, client)."""
    zoo = GatedZoo(app_models)
    demo = app.build_demo(zoo, concurrency_limit=1, max_queue_size=1)
    _, url, _ = demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=pick_free_port(), prevent_thread_lock=True, quiet=True))
    try:
        yield zoo, url, Client(url, verbose=False, analytics_enabled=False)
    finally:
        zoo.gate.set()
        demo.close()


def wait_until(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_full_queue_is_refused_at_once_and_the_others_finish(gated_app):
    zoo, url, client = gated_app
    running = client.submit(**GOOD, api_name="/generate")
    assert zoo.waiting.acquire(timeout=20)  # the first one is running (held at the gate)
    waiting = client.submit(**{**GOOD, "seed": 2}, api_name="/generate")
    wait_until(lambda: waiting.status().code.name == "IN_QUEUE")

    started = time.monotonic()
    extra = client.submit(**{**GOOD, "seed": 3}, api_name="/generate")
    with pytest.raises(Exception, match="Queue is full") as caught:
        extra.result(timeout=20)
    assert time.monotonic() - started < 5, "a full queue must answer at once, not hang"
    assert type(caught.value).__name__ == "QueueError"

    # The same over plain HTTP (the README's curl flow): the POST itself is refused with 503.
    with httpx.Client(timeout=20) as http:
        posted = http.post(f"{url.rstrip('/')}/gradio_api/call/generate", json={"data": list(GOOD.values())})
    assert posted.status_code == 503
    assert "Queue is full" in posted.text, posted.text
    assert time.monotonic() - started < 10

    zoo.gate.set()
    assert running.result(timeout=60).startswith("ROMEO:")
    assert waiting.result(timeout=60).startswith("ROMEO:")
    assert client.predict(**GOOD, api_name="/generate").startswith("ROMEO:")  # room again


def test_the_app_default_limits_are_the_documented_ones():
    assert app.demo._queue.max_size == lifecycle.MAX_QUEUE_SIZE == 32
    limits = {fn.api_name: (fn.concurrency_limit, fn.concurrency_id) for fn in app.demo.fns.values()}
    # The page's Generate button and the API share one limit of CONCURRENCY_LIMIT generations.
    assert limits["generate"] == limits["generate_for_page"] == (lifecycle.CONCURRENCY_LIMIT, "generate")
    assert lifecycle.CONCURRENCY_LIMIT == 32  # README, "Limits and safety"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cell": "../../../etc/passwd"}, "Unknown cell '../../../etc/passwd'"),
        ({"cell": "/tmp"}, "Unknown cell '/tmp'"),
        ({"cell": "lstm-h64/../../secret"}, "Unknown cell"),
        ({"hidden_size": "../lstm-h256"}, "hidden_size must be a whole number"),
        ({"cell": "models/lstm-h64"}, "Unknown cell 'models/lstm-h64'"),
    ],
)
def test_a_request_cannot_name_a_path_or_a_model_outside_the_zoo(client, overrides, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message.replace("(", r"\(")):
        client.predict(**{**GOOD, **overrides}, api_name="/generate")


def test_the_api_takes_no_path_and_returns_none(client, app_models):
    info = client.view_api(print_info=False, return_format="dict")
    names = {p["parameter_name"] for e in info["named_endpoints"].values() for p in e["parameters"]}
    assert names == {
        "prompt", "cell", "hidden_size", "temperature", "max_new_chars", "top_k", "top_p", "seed", "text", "layer",
        "seconds", "num_layers", "model_id", "form", "acrostic", "first_line", "rhyme", "tones", "mood", "poem",
    }  # no file or path among them: a request names a model by cell and size, or a trained one by its id
    table = client.predict(api_name="/models")
    assert str(app_models) not in str(table) and "path" not in {key for row in table for key in row}


def test_model_files_are_not_served_over_http(app_url, app_models):
    weights = app_models / "lstm-h64" / "model.safetensors"
    base = app_url.rstrip("/")
    with httpx.Client(timeout=20) as http:
        for address in (
            f"{base}/gradio_api/file={weights}",
            f"{base}/file={weights}",
            f"{base}/gradio_api/file=/etc/passwd",
        ):
            response = http.get(address)
            assert response.status_code in (403, 404), (address, response.status_code)


def test_a_lone_surrogate_in_the_prompt_is_refused_over_http(app_url):
    # JSON can carry half of a UTF-16 pair ("\ud800"); it is no character and is refused clearly.
    body = '{"data": ["ROMEO:\\ud800", "lstm", 64, 0.8, 10, 0, 1.0, 1]}'
    base = app_url.rstrip("/")
    with httpx.Client(timeout=30) as http:
        posted = http.post(f"{base}/gradio_api/call/generate", content=body, headers={"Content-Type": "application/json"})
        events = http.get(f"{base}/gradio_api/call/generate/{posted.json()['event_id']}").text
    assert "event: error" in events
    assert "prompt must be valid Unicode text: it holds a lone surrogate (U+D800) at position 6" in events


class _Booby:
    """Unpickling this creates ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return Path.touch, (Path(self.marker),)


def test_checkpoints_are_safetensors_only_a_pickle_is_never_loaded(tmp_path, trained_run):
    import pickle
    import shutil

    from rnn_demo.model import CharRNN, CheckpointError

    folder = tmp_path / "lstm-h64"
    shutil.copytree(trained_run[0], folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Booby(str(marker))))
    with pytest.raises(CheckpointError, match="does not exist"):
        CharRNN.from_pretrained(folder)
    zoo = ModelZoo(tmp_path)
    assert zoo.models() == [] and "has no model.safetensors" in " ".join(zoo.problems())
    assert not marker.exists()
