"""Limits and safety of the served app: a full queue refuses at once, requests cannot reach
paths or models outside the zoo, and the server keeps serving afterwards; the caps per visitor on
requests and uploads, the size of uploads, Gradio's cache, and the answers nobody reads."""

import contextlib
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


@contextlib.contextmanager
def gated_server(app_models, port: int, concurrency_limit: int, max_queue_size: int):
    """The app on ``port`` whose generations wait until the test opens the gate: (zoo, url)."""
    zoo = GatedZoo(app_models)
    demo = app.build_demo(zoo, concurrency_limit=concurrency_limit, max_queue_size=max_queue_size)
    _, url, _ = demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True))
    try:
        yield zoo, url
    finally:
        zoo.gate.set()
        demo.close()


@pytest.fixture
def gated_app(app_models, pick_free_port):
    """The app with one generation at a time and one waiting: (zoo, url, client)."""
    with gated_server(app_models, pick_free_port(), concurrency_limit=1, max_queue_size=1) as (zoo, url):
        yield zoo, url, Client(url, verbose=False, analytics_enabled=False)


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


# ---- uploads ------------------------------------------------------------------------------------


def test_uploads_are_capped_per_visitor_and_in_all_within_the_window():
    from rnn_demo.serving.visitor_caps import UploadCap

    now = [0.0]
    cap = UploadCap(app=None, per_visitor=2, in_all=3, window=60, clock=lambda: now[0])
    assert cap.admit("a") is None and cap.admit("a") is None
    assert cap.admit("a") == "You have uploaded 2 files in the last 1 minutes, the most one visitor may: try again later."
    assert cap.admit("b") is None
    assert cap.admit("c").startswith("The server has taken 3 uploads in the last 1 minutes")
    now[0] = 61.0  # the window has passed: the cache has deleted those files by now
    assert cap.admit("a") is None and cap.admit("c") is None


def test_an_upload_over_the_visitors_cap_is_refused_over_http_and_others_still_upload(app_url):
    def upload(address: str, n: int) -> httpx.Response:
        files = {"files": (f"text-{n}.txt", f"text number {n}\n".encode(), "text/plain")}
        return httpx.post(f"{app_url}gradio_api/upload", files=files, headers={"X-Forwarded-For": address}, timeout=30)

    answers = [upload("198.51.100.7", n) for n in range(lifecycle.UPLOADS_PER_VISITOR + 1)]
    assert [a.status_code for a in answers] == [200] * lifecycle.UPLOADS_PER_VISITOR + [429]
    assert "the most one visitor may" in answers[-1].text
    assert upload("198.51.100.8", 0).status_code == 200  # another visitor


def test_an_upload_over_the_size_cap_is_refused(app_url):
    from rnn_demo.serving.training_jobs import TrainingLimits

    too_big = b"x" * (TrainingLimits().max_text_bytes + 1)
    answer = httpx.post(f"{app_url}gradio_api/upload", files={"files": ("big.txt", too_big, "text/plain")},
                        headers={"X-Forwarded-For": "198.51.100.9"}, timeout=60)  # fmt: skip
    assert answer.status_code == 413 and "maximum allowed size" in answer.text


# ---- answers nobody reads -------------------------------------------------------------------------


def fake_gradio_queue(unread: int, busy: int = 0, read: int = 0):
    """Gradio's queue as unread_answers sees it: sessions with an unread answer, sessions whose event
    still runs (messages waiting too), sessions whose reader took everything."""
    import asyncio
    import types

    sessions = {}
    for kind, count, messages in (("unread", unread, 1), ("busy", busy, 2), ("read", read, 0)):
        for n in range(count):
            queue = asyncio.Queue()
            for _ in range(messages):
                queue.put_nowait("a message")
            sessions[f"{kind}-{n}"] = queue
    running = {f"event-{n}": types.SimpleNamespace(session_hash=f"busy-{n}") for n in range(busy)}
    ids = {session: {"an event"} for session in sessions}
    return types.SimpleNamespace(pending_messages_per_session=sessions, event_ids_to_events=running, pending_event_ids_session=ids)


def test_unread_answers_are_dropped_when_old_or_beyond_the_most_recent_ones():
    from rnn_demo.serving.unread_answers import MAX_UNREAD, UNREAD_SECONDS, drop_unread

    queue = fake_gradio_queue(unread=3, busy=2, read=2)
    seen = drop_unread(queue, {}, now=0.0)
    assert sorted(seen) == ["unread-0", "unread-1", "unread-2"] and len(queue.pending_messages_per_session) == 7
    queue.pending_messages_per_session["unread-0"].get_nowait()  # its reader came: no longer unread
    seen = drop_unread(queue, seen, now=UNREAD_SECONDS)
    assert seen == {} and sorted(queue.pending_messages_per_session) == [
        "busy-0", "busy-1", "read-0", "read-1", "unread-0"
    ]  # the two read late are dropped; running events and read sessions are left alone
    assert "unread-1" not in queue.pending_event_ids_session

    flood = fake_gradio_queue(unread=MAX_UNREAD + 5)
    seen = drop_unread(flood, {f"unread-{n}": float(n) for n in range(MAX_UNREAD + 5)}, now=10.0)
    assert len(seen) == MAX_UNREAD and "unread-4" not in seen and "unread-5" in seen  # the oldest go first


@pytest.mark.slow
def test_unread_answers_leave_the_server_and_it_carries_on(app_models, pick_free_port):
    from rnn_demo.serving import unread_answers

    demo = app.build_demo(ModelZoo(app_models))
    _, url, _ = demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=pick_free_port(), prevent_thread_lock=True, quiet=True))
    try:
        for n in range(unread_answers.MAX_UNREAD + 8):
            answer = httpx.post(f"{url}gradio_api/call/neurons", json={"data": ["ROMEO: a text", "lstm", 64, 0]}, timeout=30)
            assert answer.status_code == 200  # an event id; its answer is never read
        queue = demo._queue

        def unread() -> int:
            return sum(1 for messages in list(queue.pending_messages_per_session.values()) if messages.qsize())

        wait_until(lambda: not queue.event_ids_to_events and unread() <= unread_answers.MAX_UNREAD, timeout=60)
        assert unread() <= unread_answers.MAX_UNREAD
        post = httpx.post(f"{url}gradio_api/call/neurons", json={"data": ["ROMEO:", "lstm", 64, 0]}, timeout=30)
        read = httpx.get(f"{url}gradio_api/call/neurons/{post.json()['event_id']}", timeout=30)  # read at once: whole
        assert "event: complete" in read.text and '"chars": ["R", "O"' in read.text
    finally:
        demo.close()


# ---- requests pending per visitor -------------------------------------------------------------------


@pytest.fixture
def gated_roomy_app(app_models, pick_free_port):
    """The app with room for many generations, each held until the test opens the gate: (zoo, url)."""
    with gated_server(app_models, pick_free_port(), concurrency_limit=16, max_queue_size=32) as served:
        yield served


def test_a_visitors_flood_is_refused_beyond_its_pending_requests_and_others_still_get_in(gated_roomy_app):
    zoo, url = gated_roomy_app

    def join(address: str) -> httpx.Response:
        return httpx.post(f"{url}gradio_api/call/generate", json={"data": list(GOOD.values())},
                          headers={"X-Forwarded-For": address}, timeout=30)  # fmt: skip

    flood = [join("198.51.100.20") for _ in range(lifecycle.PENDING_PER_VISITOR + 3)]
    assert [answer.status_code for answer in flood] == [200] * lifecycle.PENDING_PER_VISITOR + [429] * 3
    assert flood[-1].text.startswith(f"You have {lifecycle.PENDING_PER_VISITOR} requests waiting or running")
    other = join("198.51.100.21")
    assert other.status_code == 200  # another visitor's request is taken
    zoo.gate.set()
    answer = httpx.get(f"{url}gradio_api/call/generate/{other.json()['event_id']}", timeout=60)
    assert "event: complete" in answer.text
    wait_until(lambda: join("198.51.100.20").status_code == 200, timeout=60)  # the visitor's requests ended: room again


def test_gradios_cache_is_cleaned_of_files_older_than_an_hour():
    assert app.demo.delete_cache == (lifecycle.CACHE_CHECK_SECONDS, lifecycle.CACHE_SECONDS)
    # the zip the page offers stays downloadable as long as its model is kept after its last use
    assert lifecycle.CACHE_SECONDS >= app.TRAINER.limits.model_minutes * 60
