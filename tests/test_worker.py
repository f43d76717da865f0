"""The generation worker (rnn_demo/serving/worker.py) and the stream around it
(rnn_demo/serving/streaming.py): every running generation stepped together, each giving exactly the
text it gives alone; one request's failure is its own; cancel, Stop and the pace."""

import threading
import time

import pytest
import torch
from conftest import SLOW_MODEL, cpu_seconds, wait_until

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
    alone = {seed: generate(models[seed % 2], **request(seed)) for seed in range(100)}
    for first in range(0, 100, at_once):
        seeds = range(first, min(first + at_once, 100))
        generations = {seed: worker.submit(models[seed % 2], **request(seed)) for seed in seeds}
        for seed, generation in generations.items():
            assert finished_text(generation) == alone[seed], f"seed {seed}, {at_once} at once"


def test_requests_that_join_a_running_batch_are_not_changed_by_it(trained_model, worker):
    long = worker.submit(trained_model, **request(0, length=1_500))
    assert wait_until(lambda: len(long.wait(after=-1, timeout=0)) > 20)
    joined = [worker.submit(trained_model, **request(seed)) for seed in range(1, 9)]
    for seed, generation in enumerate(joined, start=1):
        assert finished_text(generation) == generate(trained_model, **request(seed))
    assert finished_text(long) == generate(trained_model, **request(0, length=1_500))


# ---- one request's failure is its own -----------------------------------------------------------


def test_a_failing_constraint_ends_its_request_alone_with_a_sentence(trained_model, worker):
    def breaks_at_10(text):
        if len(text) == 10:
            raise RuntimeError("the rhyme book is missing")
        return None

    def impossible_at_5(text):
        return "€" if len(text) == 5 else None

    others = {seed: worker.submit(trained_model, **request(seed, 300)) for seed in range(4)}
    broken = worker.submit(trained_model, "ROMEO:", 300, seed=9, allowed=breaks_at_10)
    impossible = worker.submit(trained_model, "ROMEO:", 300, seed=9, allowed=impossible_at_5)
    with pytest.raises(GenerationFailed, match="the rhyme book is missing"):
        finished_text(broken)
    with pytest.raises(GenerationFailed, match="none of the characters allowed at position 5 is in the model's vocab"):
        finished_text(impossible)
    for seed, generation in others.items():
        assert finished_text(generation) == generate(trained_model, **request(seed, 300))
    assert finished_text(worker.submit(trained_model, **request(7))) == generate(trained_model, **request(7))


def test_a_top_k_beyond_any_integer_type_is_every_character(trained_model, worker):
    others = [worker.submit(trained_model, "ROMEO:", 500, seed=seed) for seed in range(4)]
    huge = worker.submit(trained_model, "ROMEO:", 500, seed=4, top_k=10**20)
    assert finished_text(huge) == generate(trained_model, "ROMEO:", 500, seed=4)
    for seed, generation in enumerate(others):
        assert finished_text(generation) == generate(trained_model, "ROMEO:", 500, seed=seed)


def test_bad_arguments_are_refused_when_submitted(trained_model, worker):
    with pytest.raises(ValueError, match="max_new_chars"):
        worker.submit(trained_model, "a", -1)
    with pytest.raises(ValueError, match="temperature"):
        worker.submit(trained_model, "a", 5, temperature=float("nan"))
    with pytest.raises(ValueError, match="seed"):
        worker.submit(trained_model, "a", 5, seed=-3)
    with pytest.raises(TypeError, match="allowed must be a callable"):
        worker.submit(trained_model, "a", 5, allowed="abc")
    assert worker.running_count() == 0


# ---- cancel, idle, weights --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_model(slow_models):
    return CharRNN.from_pretrained(slow_models / "lstm-h768")


def test_a_cancelled_generation_is_dropped_at_the_next_tick(slow_model, worker):
    generation = worker.submit(slow_model, "ROMEO:", 2_000, seed=1)
    assert wait_until(lambda: len(generation.wait(after=-1, timeout=0)) > 5)
    generation.cancel()
    assert wait_until(lambda: worker.running_count() == 0, timeout=0.5)
    assert generation.finished and generation.remaining > 1_000
    assert finished_text(worker.submit(slow_model, "ROMEO:", 20, seed=1)) == generate(slow_model, "ROMEO:", 20, seed=1)


def test_the_thread_sleeps_without_work(trained_model, worker):
    finished_text(worker.submit(trained_model, "a", 10, seed=0))
    thread = worker._thread
    stat = f"/proc/self/task/{thread.native_id}/stat"
    before = cpu_seconds(stat)
    time.sleep(0.5)
    assert cpu_seconds(stat) - before < 0.05
    assert thread.is_alive() and thread.daemon


def test_requests_on_one_model_share_its_weights(trained_model, worker):
    assert worker.weights(trained_model) is worker.weights(trained_model)
    assert worker.submit(trained_model, "a", 3, seed=0).sampler.weights is worker.weights(trained_model)


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
