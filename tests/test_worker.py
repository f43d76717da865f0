"""The generation worker (rnn_demo/serving/worker.py) and the stream around it
(rnn_demo/serving/streaming.py): every running generation stepped together, each giving exactly the
text it gives alone; one request's failure is its own; cancel, Stop and the pace."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, SLOW_MODEL, cpu_seconds, wait_until

from rnn_demo.generation.engine import Weights
from rnn_demo.generation.sampling import generate
from rnn_demo.model import CharRNN
from rnn_demo.serving.streaming import UPDATE_EVERY_SECONDS, generate_stream
from rnn_demo.serving.worker import GenerationFailed, GenerationWorker
from rnn_demo.serving.zoo import ModelZoo

# Every kind of setting, taken in turn by the seeds of the tests.
SETTINGS = [
    dict(prompt="ROMEO:", temperature=0.8, top_k=0, top_p=1.0),
    dict(prompt="KING:\n", temperature=1.0, top_k=5, top_p=1.0),
    dict(prompt="", temperature=0.5, top_k=0, top_p=0.9),
    dict(prompt="Thou", temperature=0.0, top_k=0, top_p=1.0),
]


def request(seed: int, length: int = 60) -> dict:
    return dict(**SETTINGS[seed % len(SETTINGS)], max_new_chars=length, seed=seed)


def finished_text(generation, timeout: float = 60) -> str:
    """The whole text of a generation, once it is finished."""
    assert wait_until(lambda: generation.finished, timeout=timeout)
    return generation.wait(after=-1, timeout=0)


@pytest.fixture
def worker():
    return GenerationWorker()


@pytest.fixture(scope="module")
def trained_weights(trained_model):
    """The engine weights of ``trained_model``, as the zoo keeps them for the worker."""
    return Weights.from_model(trained_model)


@pytest.fixture(scope="module")
def two_layer_gru():
    """A 2x48 GRU (untrained): another cell, and layers above the first, for the seed test."""
    vocab = "".join(chr(c) for c in range(32, 127)) + "\n"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return CharRNN(vocab, cell="gru", hidden_size=48, num_layers=2).eval()


# ---- a seed gives the same text alone or beside others ------------------------------------------


@pytest.mark.parametrize("at_once", [1, 3, 16])
def test_100_seeds_give_the_same_text_alone_or_beside_others(trained_model, two_layer_gru, worker, at_once):
    models = [trained_model, two_layer_gru]
    weights = [Weights.from_model(model) for model in models]
    alone = {seed: generate(models[seed % 2], **request(seed)) for seed in range(100)}
    for first in range(0, 100, at_once):
        seeds = range(first, min(first + at_once, 100))
        generations = {seed: worker.submit(weights[seed % 2], **request(seed)) for seed in seeds}
        for seed, generation in generations.items():
            assert finished_text(generation) == alone[seed], f"seed {seed}, {at_once} at once"


def test_requests_that_join_a_running_batch_are_not_changed_by_it(trained_model, worker, trained_weights):
    long = worker.submit(trained_weights, **request(0, length=1_500))
    assert wait_until(lambda: len(long.wait(after=-1, timeout=0)) > 20)
    joined = [worker.submit(trained_weights, **request(seed)) for seed in range(1, 9)]
    for seed, generation in enumerate(joined, start=1):
        assert finished_text(generation) == generate(trained_model, **request(seed))
    assert finished_text(long) == generate(trained_model, **request(0, length=1_500))


# ---- one request's failure is its own -----------------------------------------------------------


def test_a_failing_constraint_ends_its_request_alone_with_a_sentence(trained_model, worker, trained_weights):
    def breaks_at_10(text):
        if len(text) == 10:
            raise RuntimeError("the rhyme book is missing")
        return None

    def impossible_at_5(text):
        return "€" if len(text) == 5 else None

    others = {seed: worker.submit(trained_weights, **request(seed, 300)) for seed in range(4)}
    broken = worker.submit(trained_weights, "ROMEO:", 300, seed=9, allowed=breaks_at_10)
    impossible = worker.submit(trained_weights, "ROMEO:", 300, seed=9, allowed=impossible_at_5)
    with pytest.raises(GenerationFailed, match="the rhyme book is missing"):
        finished_text(broken)
    with pytest.raises(GenerationFailed, match="none of the characters allowed at position 5 is in the model's vocab"):
        finished_text(impossible)
    for seed, generation in others.items():
        assert finished_text(generation) == generate(trained_model, **request(seed, 300))
    assert finished_text(worker.submit(trained_weights, **request(7))) == generate(trained_model, **request(7))


def test_a_top_k_beyond_any_integer_type_is_every_character(trained_model, worker, trained_weights):
    others = [worker.submit(trained_weights, "ROMEO:", 500, seed=seed) for seed in range(4)]
    huge = worker.submit(trained_weights, "ROMEO:", 500, seed=4, top_k=10**20)
    assert finished_text(huge) == generate(trained_model, "ROMEO:", 500, seed=4)
    for seed, generation in enumerate(others):
        assert finished_text(generation) == generate(trained_model, "ROMEO:", 500, seed=seed)


def test_bad_arguments_are_refused_when_submitted(trained_model, worker, trained_weights):
    with pytest.raises(ValueError, match="max_new_chars"):
        worker.submit(trained_weights, "a", -1)
    with pytest.raises(ValueError, match="temperature"):
        worker.submit(trained_weights, "a", 5, temperature=float("nan"))
    with pytest.raises(ValueError, match="seed"):
        worker.submit(trained_weights, "a", 5, seed=-3)
    with pytest.raises(TypeError, match="allowed must be a callable"):
        worker.submit(trained_weights, "a", 5, allowed="abc")
    assert worker.running_count() == 0


# ---- cancel, idle, weights --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_model(slow_models):
    return CharRNN.from_pretrained(slow_models / "lstm-h768")


@pytest.fixture(scope="module")
def slow_weights(slow_model):
    return Weights.from_model(slow_model)


def test_a_cancelled_generation_is_dropped_at_the_next_tick(slow_model, slow_weights, worker):
    generation = worker.submit(slow_weights, "ROMEO:", 2_000, seed=1)
    assert wait_until(lambda: len(generation.wait(after=-1, timeout=0)) > 5)
    generation.cancel()
    assert wait_until(lambda: worker.running_count() == 0, timeout=0.5)
    assert generation.finished and generation.remaining > 1_000
    assert finished_text(worker.submit(slow_weights, "ROMEO:", 20, seed=1)) == generate(slow_model, "ROMEO:", 20, seed=1)


def test_the_thread_sleeps_without_work(trained_model, worker, trained_weights):
    finished_text(worker.submit(trained_weights, "a", 10, seed=0))
    thread = worker._thread
    stat = f"/proc/self/task/{thread.native_id}/stat"
    before = cpu_seconds(stat)
    time.sleep(0.5)
    assert cpu_seconds(stat) - before < 0.05
    assert thread.is_alive() and thread.daemon


def test_the_zoo_reads_a_models_weights_once_without_torch_and_they_are_the_models(app_models):
    code = (
        "import sys\nfrom rnn_demo.serving.zoo import ModelZoo\n"
        f"zoo = ModelZoo({str(app_models)!r})\n"
        "assert zoo.weights('lstm', 64) is zoo.weights('lstm', 64)\n"
        "assert 'torch' not in sys.modules, 'reading the engine weights imported torch'\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    from_folder, from_model = ModelZoo(app_models).weights("lstm", 64), Weights.from_model(CharRNN.from_pretrained(app_models / "lstm-h64"))
    assert from_folder.vocab == from_model.vocab
    for mine, theirs in zip(from_folder[2:], from_model[2:]):
        assert all(np.array_equal(a, b) for a, b in zip(mine, theirs)) if isinstance(mine, list) else np.array_equal(mine, theirs)


# ---- the stream: the pace, Stop ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_zoo(slow_models):
    return ModelZoo(slow_models)


def test_the_stream_sends_the_text_as_it_grows_at_the_pace(app_models, worker):
    zoo = ModelZoo(app_models)
    model = zoo.load("lstm", 256)
    times, texts = [], []
    started = time.perf_counter()
    for text, status in generate_stream(zoo, "ROMEO:", "lstm", 256, 0.8, 2_000, 0, 1.0, 5, worker=worker):
        times.append(time.perf_counter() - started)
        texts.append(text)
    assert texts[0] == "ROMEO:" and status.done and status.new_chars == 2_000
    assert texts[-1] == "ROMEO:" + generate(model, "ROMEO:", 2_000, temperature=0.8, seed=5)
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
    gaps = [later - earlier for earlier, later in zip(times[1:-2], times[2:-1])]
    assert gaps and min(gaps) >= UPDATE_EVERY_SECONDS * 0.9  # no update sooner than the pace after another


def test_stop_ends_a_generation_within_a_fifth_of_a_second(slow_zoo, worker):
    stop = threading.Event()
    updates = generate_stream(slow_zoo, "ROMEO:", **SLOW_MODEL, temperature=0.8, max_new_chars=2_000, top_k=0,
                              top_p=1.0, seed=2, worker=worker, should_stop=stop.is_set)
    for text, status in updates:
        if status.new_chars > 10 and not stop.is_set():
            stop.set()
            stopped_at = time.perf_counter()
    ended_after = time.perf_counter() - stopped_at
    assert status.stopped and not status.done and status.new_chars < 2_000
    assert ended_after < 0.2
    assert wait_until(lambda: worker.running_count() == 0, timeout=0.2)


def test_a_failed_constraint_reaches_the_stream_as_one_sentence(app_models, worker):
    from rnn_demo.serving.streaming import GenerationError

    zoo = ModelZoo(app_models)
    updates = generate_stream(zoo, "ROMEO:", "lstm", 64, 0.8, 50, 0, 1.0, 1, worker=worker, allowed=lambda text: "€")
    with pytest.raises(GenerationError, match="^The generation failed: none of the characters allowed at position 0"):
        list(updates)


# ---- the running app: /generate beside other requests, cancel and disconnect -----------------------

API_REQUEST = dict(prompt="ROMEO:", cell="lstm", hidden_size=64, temperature=0.8, max_new_chars=150, top_k=0, top_p=1.0)


def test_the_apps_text_for_a_seed_is_what_generate_gives(client, app_models):
    model = CharRNN.from_pretrained(app_models / "lstm-h64")
    for settings in (dict(seed=7), dict(seed=8, top_k=5, temperature=1.2), dict(seed=9, top_p=0.7, temperature=0.5)):
        request = {**API_REQUEST, **settings}
        arguments = {name: request[name] for name in ("temperature", "top_k", "top_p", "seed")}
        expected = request["prompt"] + generate(model, request["prompt"], request["max_new_chars"], **arguments)
        assert client.predict(**request, api_name="/generate") == expected


def test_a_top_k_beyond_any_integer_type_fails_nobody_through_the_api(client, app_models):
    model = CharRNN.from_pretrained(app_models / "lstm-h256")
    request = {**API_REQUEST, "hidden_size": 256, "max_new_chars": 2_000}
    jobs = [client.submit(**request, seed=seed, api_name="/generate") for seed in range(4)]
    jobs.append(client.submit(**{**request, "top_k": 10**20}, seed=4, api_name="/generate"))
    for seed, job in enumerate(jobs):
        assert job.result(timeout=120) == "ROMEO:" + generate(model, "ROMEO:", 2_000, temperature=0.8, seed=seed)


@pytest.mark.slow
def test_32_concurrent_api_streams_each_return_what_they_return_alone(app_url, app_models):
    from gradio_client import Client

    from rnn_demo.serving.lifecycle import PENDING_PER_VISITOR

    model = CharRNN.from_pretrained(app_models / "lstm-h64")
    seeds = range(100, 132)
    # Four visitors (a visitor has at most PENDING_PER_VISITOR requests at once), 8 streams each.
    visitors = [Client(app_url, verbose=False, analytics_enabled=False, headers={"X-Forwarded-For": f"192.0.2.{n}"})
                for n in range(len(seeds) // PENDING_PER_VISITOR)]  # fmt: skip
    jobs = [visitors[i % len(visitors)].submit(**{**API_REQUEST, "seed": seed}, api_name="/generate")
            for i, seed in enumerate(seeds)]  # fmt: skip
    texts = [job.result(timeout=120) for job in jobs]
    alone = ["ROMEO:" + generate(model, "ROMEO:", 150, temperature=0.8, seed=seed) for seed in seeds]
    assert texts == alone


class RecordingWorker(GenerationWorker):
    """A worker that keeps every generation it starts, for the tests to look into."""

    def __init__(self):
        super().__init__()
        self.started = []

    def submit(self, *args, **kwargs):
        generation = super().submit(*args, **kwargs)
        self.started.append(generation)
        return generation


@pytest.fixture(scope="module")
def served(slow_models, pick_free_port):
    """An app of its own serving ``slow_models``, with a worker the tests can look into: (url, worker)."""
    import app

    worker = RecordingWorker()
    demo = app.build_demo(ModelZoo(slow_models), worker)
    _, url, _ = demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=pick_free_port(),
                                                 prevent_thread_lock=True, quiet=True))
    try:
        yield url, worker
    finally:
        demo.close()


def test_a_cancelled_stream_ends_its_generation_on_the_server(served):
    from gradio_client import Client

    url, worker = served
    client = Client(url, verbose=False, analytics_enabled=False)
    job = client.submit(**{**API_REQUEST, **SLOW_MODEL, "max_new_chars": 2_000, "seed": 3}, api_name="/generate")
    for update in job:
        if len(update) > 40:
            break
    assert worker.running_count() == 1
    job.cancel()
    assert wait_until(lambda: worker.running_count() == 0, timeout=5)
    assert worker.started[-1].remaining > 0  # ended early, not run to its end


def test_a_client_that_disconnects_mid_stream_ends_its_generation(served):
    import httpx

    url, worker = served
    base = url.rstrip("/")
    body = {"data": ["ROMEO:", SLOW_MODEL["cell"], SLOW_MODEL["hidden_size"], 0.8, 2_000, 0, 1.0, 4]}
    with httpx.Client(timeout=30) as http:
        event_id = http.post(f"{base}/gradio_api/call/generate", json=body).json()["event_id"]
        with http.stream("GET", f"{base}/gradio_api/call/generate/{event_id}") as response:
            for line in response.iter_lines():
                if line.startswith("data:") and len(line) > 60:
                    break  # the connection closes here, mid-stream
    assert wait_until(lambda: worker.running_count() == 0, timeout=10)
    assert worker.started[-1].remaining > 0  # ended early, not run to its end
