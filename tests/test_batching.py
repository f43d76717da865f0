"""Continuous batching (rnn_demo/serving/batching.py): many generations stepped together, each one giving
exactly the text it gives alone; joins, leaves, cancels, errors and idling of the scheduler."""

import itertools
import threading
import time

import numpy as np
import pytest
import torch
from conftest import MIXED_REQUESTS, SLOW_MODEL, cpu_seconds, generate_with, wait_until

from rnn_demo.generation import engines, stepper
from rnn_demo.generation.sampling import SamplingSettings, TokenDraws, generate, next_token_distribution
from rnn_demo.generation.stepper import Stepper, state_arrays
from rnn_demo.model import CharRNN
from rnn_demo.serving import batching
from rnn_demo.serving.batching import BatchScheduler, GenerationFailed, SchedulerFull

VOCAB = "".join(chr(c) for c in range(32, 97))  # 65 characters, like tiny shakespeare


def thread_cpu_seconds(thread: threading.Thread) -> float:
    """CPU time a thread has used (Linux: /proc), 0.0 where that cannot be read."""
    try:
        return cpu_seconds(f"/proc/self/task/{thread.native_id}/stat")
    except OSError:
        return 0.0


def random_state(cell: str, layers: int, batch: int, hidden_size: int, generator: torch.Generator):
    h = torch.randn(layers, batch, hidden_size, generator=generator)
    return state_arrays((h, torch.randn(layers, batch, hidden_size, generator=generator)) if cell == "lstm" else h)


def rows_of(state, rows: slice):
    return tuple(part[:, rows] for part in state) if isinstance(state, tuple) else state[:, rows]


def flat(state) -> np.ndarray:
    return np.concatenate([part.flatten() for part in state]) if isinstance(state, tuple) else state.flatten()


# ---- the arithmetic: batch-invariant steps, draws identical to torch.multinomial ----------------


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("hidden_size", [50, 64, 100, 256, 512])  # 50, 100: not a multiple of a SIMD width
def test_a_stepped_row_is_bit_identical_whatever_the_batch_size(cell, hidden_size):
    torch.manual_seed(0)
    stepper = Stepper(CharRNN(VOCAB, cell=cell, hidden_size=hidden_size, num_layers=2).eval())
    generator = torch.Generator().manual_seed(1)
    for batch in (16, 3, 9, 64):
        state = random_state(cell, 2, batch, hidden_size, generator)
        tokens = torch.randint(0, len(VOCAB), (batch,), generator=generator).numpy()
        logits, new_state = stepper.step(tokens, state)
        for i in range(batch):
            alone_logits, alone_state = stepper.step(tokens[i : i + 1], rows_of(state, slice(i, i + 1)))
            assert np.array_equal(alone_logits[0], logits[i]), (batch, i)
            assert np.array_equal(flat(alone_state), flat(rows_of(new_state, slice(i, i + 1)))), (batch, i)


@pytest.mark.parametrize("draws", [0, 3, 64, 1000])  # noise drawn 1, 3, 64 and 64 draws at a time
def test_draws_are_those_of_torch_multinomial(draws):
    # Texts generated with torch.multinomial (a tutorial's loop, this project's first versions) come
    # out the same, however many draws' noise is drawn at once.
    values = torch.Generator().manual_seed(1234)
    for seed in range(50):
        ours, torchs = TokenDraws(seed, 65, draws), torch.Generator().manual_seed(seed)
        for k in range(10):
            settings = SamplingSettings(temperature=0.5 + k / 10, top_k=k % 4, top_p=0.6 + (k % 3) / 5)
            probs = next_token_distribution(torch.randn(65, generator=values).numpy() * 3, settings)
            assert ours.draw(probs) == int(torch.multinomial(torch.from_numpy(probs), 1, generator=torchs))
    with pytest.raises(ValueError, match="draws must be a whole number"):
        TokenDraws(0, 65, -1)


def test_distributions_of_a_batch_equal_those_of_each_row():
    logits = torch.randn(37, 65, generator=torch.Generator().manual_seed(0)).numpy() * 4
    all_settings = [SamplingSettings(0.8), SamplingSettings(1.3, 10, 0.5), SamplingSettings(0), SamplingSettings(1e-3)]
    for settings in all_settings:
        batched = next_token_distribution(logits, settings)
        for i in range(len(logits)):
            assert np.array_equal(batched[i], next_token_distribution(logits[i], settings))
            assert np.array_equal(batched[i], next_token_distribution(logits[i : i + 1], settings)[0])


# ---- the scheduler ----------------------------------------------------------------------------------


@pytest.fixture
def scheduler():
    return BatchScheduler(idle_seconds=0.3)


REQUESTS = MIXED_REQUESTS


def test_32_concurrent_requests_each_give_the_text_they_give_alone(trained_model, scheduler):
    alone = [generate(trained_model, **request) for request in REQUESTS]
    texts = [None] * len(REQUESTS)

    def run(i):
        texts[i] = generate_with(scheduler, trained_model, **REQUESTS[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(REQUESTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert texts == alone
    assert len(set(texts)) > len(REQUESTS) // 2  # different seeds, different texts


def test_requests_join_and_leave_a_running_batch(trained_model, monkeypatch):
    batch_sizes = []  # requests drawing in each tick
    original_sample_rows = stepper.Stepper.sample_rows

    def recording_sample_rows(self, logits, state, noise, counts, *settings):
        batch_sizes.append(int(np.count_nonzero(counts)))
        return original_sample_rows(self, logits, state, noise, counts, *settings)

    monkeypatch.setattr(stepper.Stepper, "sample_rows", recording_sample_rows)
    scheduler = BatchScheduler(idle_seconds=0.3, max_ahead=10_000)  # the long one runs on while unread
    long = scheduler.submit(trained_model, "ROMEO:", 400, temperature=0.8, seed=1)
    first = long.take(20, timeout=10)
    short = scheduler.submit(trained_model, "JULIET:", 30, temperature=0.8, seed=2)  # joins mid-stream
    short_text = "".join(short.chunks())  # and leaves while the long one goes on
    long_text = first + "".join(long.chunks())
    assert long_text == generate(trained_model, "ROMEO:", 400, temperature=0.8, seed=1)
    assert short_text == generate(trained_model, "JULIET:", 30, temperature=0.8, seed=2)
    assert 2 in batch_sizes and batch_sizes[-1] == 1  # stepped together, then alone again
    assert wait_until(lambda: scheduler.active_count() == 0)


def test_cancel_frees_the_slot_at_the_next_tick(trained_model):
    scheduler = BatchScheduler(max_active=2, idle_seconds=0.3)
    first = scheduler.submit(trained_model, "a", 2_000, seed=1)
    second = scheduler.submit(trained_model, "b", 2_000, seed=2)
    with pytest.raises(SchedulerFull, match="already generating 2 texts"):
        scheduler.submit(trained_model, "c", 10, seed=3)
    first.take(5, timeout=10)
    first.cancel()
    assert wait_until(lambda: scheduler.active_count() == 1)
    drawn = first.remaining
    time.sleep(0.05)
    assert first.remaining == drawn and first.remaining > 0  # no more work for it
    assert generate_with(scheduler, trained_model, "c", 10, seed=3) == generate(trained_model, "c", 10, seed=3)
    second.cancel()
    assert wait_until(lambda: scheduler.active_count() == 0)


def test_a_request_is_drawn_only_a_little_ahead_of_its_reader(trained_model):
    scheduler = BatchScheduler(idle_seconds=0.3, max_ahead=16)
    generation = scheduler.submit(trained_model, "ROMEO:", 500, temperature=0.8, seed=21)
    assert wait_until(lambda: generation.remaining == 500 - 16)
    worker = next(iter(scheduler._workers.values())).thread
    cpu_before = thread_cpu_seconds(worker)
    time.sleep(0.2)  # nobody reads: no more steps, and no spinning while it waits
    assert generation.remaining == 500 - 16 and thread_cpu_seconds(worker) - cpu_before < 0.03
    text = "".join(generation.chunks(min_chars=100))  # more than it may hold: still served
    assert text == generate(trained_model, "ROMEO:", 500, temperature=0.8, seed=21)


def test_closing_the_chunks_iterator_cancels_the_generation(trained_model, scheduler):
    chunks = scheduler.submit(trained_model, "ROMEO:", 2_000, seed=0).chunks(min_chars=8)
    next(chunks)
    assert scheduler.active_count() == 1
    chunks.close()  # what gradio does to the handler on Stop, cancel or disconnect
    assert wait_until(lambda: scheduler.active_count() == 0, timeout=2)


def test_an_error_in_one_request_ends_it_with_a_clear_error_and_the_others_go_on(
    trained_model, scheduler, noise_breaks_for_seed_666
):
    good = [scheduler.submit(trained_model, "ROMEO:", 200, temperature=0.8, seed=seed) for seed in (1, 2)]
    bad = scheduler.submit(trained_model, "ROMEO:", 200, temperature=0.8, seed=666)
    with pytest.raises(GenerationFailed, match="RuntimeError: the generator broke"):
        "".join(bad.chunks())
    for seed, generation in zip((1, 2), good):
        assert "".join(generation.chunks()) == generate(trained_model, "ROMEO:", 200, temperature=0.8, seed=seed)
    assert generate_with(scheduler, trained_model, "KING", 20, seed=5) == generate(trained_model, "KING", 20, seed=5)


def test_the_thread_sleeps_without_work_and_ends_when_idle(trained_model, scheduler):
    assert scheduler.running_threads() == 0  # nothing starts before the first request
    generate_with(scheduler, trained_model, "a", 10, seed=0)
    worker = next(iter(scheduler._workers.values())).thread
    cpu_before = thread_cpu_seconds(worker)
    time.sleep(0.15)  # idle but not yet retired: waiting on its condition, not spinning
    assert thread_cpu_seconds(worker) - cpu_before < 0.03
    assert wait_until(lambda: scheduler.running_threads() == 0 and not worker.is_alive(), timeout=5)
    assert generate_with(scheduler, trained_model, "a", 10, seed=0) == generate(trained_model, "a", 10, seed=0)


def test_submit_checks_its_arguments_like_generate(trained_model, scheduler):
    with pytest.raises(ValueError, match="temperature"):
        scheduler.submit(trained_model, "a", 10, temperature=-1)
    with pytest.raises(ValueError, match="max_new_chars"):
        scheduler.submit(trained_model, "a", -1)
    with pytest.raises(TypeError, match="prompt must be a str"):
        scheduler.submit(trained_model, None, 10)
    assert generate_with(scheduler, trained_model, "a", 0) == ""
    assert scheduler.running_threads() == 0


# ---- the running app: /generate under load, and cancelled streams -----------------------------------

API_REQUEST = dict(prompt="ROMEO:", cell="lstm", hidden_size=64, temperature=0.8, max_new_chars=150, top_k=0, top_p=1.0)


def test_the_apps_text_for_a_seed_is_what_generate_gives(client, app_models):
    model = CharRNN.from_pretrained(app_models / "lstm-h64")
    for settings in (dict(seed=7), dict(seed=8, top_k=5, temperature=1.2), dict(seed=9, top_p=0.7, temperature=0.5)):
        request = {**API_REQUEST, **settings}
        expected = request["prompt"] + generate(
            model,
            request["prompt"],
            request["max_new_chars"],
            temperature=request["temperature"],
            top_k=request["top_k"],
            top_p=request["top_p"],
            seed=request["seed"],
        )
        assert client.predict(**request, api_name="/generate") == expected


@pytest.mark.slow
def test_32_concurrent_api_streams_each_return_what_they_return_alone(client, app_models):
    model = CharRNN.from_pretrained(app_models / "lstm-h64")
    seeds = range(100, 132)
    jobs = [client.submit(**{**API_REQUEST, "seed": seed}, api_name="/generate") for seed in seeds]
    texts = [job.result(timeout=120) for job in jobs]
    alone = ["ROMEO:" + generate(model, "ROMEO:", 150, temperature=0.8, seed=seed) for seed in seeds]
    assert texts == alone
    assert client.predict(**{**API_REQUEST, "seed": 100}, api_name="/generate") == alone[0]  # and alone, served


def recording(scheduler_class):
    """A scheduler class that keeps every Generation it starts, for the tests to look into."""

    class Recording(scheduler_class):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.started = []

        def submit(self, *args, **kwargs):
            generation = super().submit(*args, **kwargs)
            self.started.append(generation)
            return generation

    return Recording


@pytest.fixture(scope="module", params=["in this process", "in a child process"])
def served(request, slow_models, pick_free_port):
    """Its own app serving ``slow_models``, with a scheduler the tests can look into: (url,
    scheduler). Once with each kind of scheduler."""
    import app
    from rnn_demo.serving.generation_process import ProcessScheduler
    from rnn_demo.serving.zoo import ModelZoo

    scheduler_class = BatchScheduler if request.param == "in this process" else ProcessScheduler
    scheduler = recording(scheduler_class)(idle_seconds=1.0)
    demo = app.build_demo(ModelZoo(slow_models), scheduler=scheduler)
    _, url, _ = demo.launch(**app.launch_options(server_name="127.0.0.1", server_port=pick_free_port(), prevent_thread_lock=True, quiet=True))
    try:
        yield url, scheduler
    finally:
        demo.close()
        if isinstance(scheduler, ProcessScheduler):
            scheduler.close()


def test_a_cancelled_stream_ends_its_generation_on_the_server(served):
    from gradio_client import Client

    url, scheduler = served
    client = Client(url, verbose=False, analytics_enabled=False)
    job = client.submit(**{**API_REQUEST, **SLOW_MODEL, "max_new_chars": 2_000, "seed": 3}, api_name="/generate")
    for update in job:
        if len(update) > 40:
            break
    assert scheduler.active_count() == 1
    job.cancel()
    assert wait_until(lambda: scheduler.active_count() == 0, timeout=5)
    generation = scheduler.started[-1]
    assert generation.cancelled and generation.remaining > 0  # ended early, not run to its end


def test_a_client_that_disconnects_mid_stream_ends_its_generation(served):
    import httpx

    url, scheduler = served
    base = url.rstrip("/")
    body = {"data": ["ROMEO:", SLOW_MODEL["cell"], SLOW_MODEL["hidden_size"], 0.8, 2_000, 0, 1.0, 4]}
    with httpx.Client(timeout=30) as http:
        event_id = http.post(f"{base}/gradio_api/call/generate", json=body).json()["event_id"]
        with http.stream("GET", f"{base}/gradio_api/call/generate/{event_id}") as response:
            for line in response.iter_lines():
                if line.startswith("data:") and len(line) > 60:
                    break  # the connection closes here, mid-stream
    assert wait_until(lambda: scheduler.active_count() == 0, timeout=10)
    generation = scheduler.started[-1]
    assert generation.cancelled and generation.remaining > 0  # ended early, not run to its end


def test_under_load_pieces_come_at_the_pace_asked_not_every_few_characters(trained_model, scheduler):
    generation = scheduler.submit(trained_model, "ROMEO:", 600, temperature=0.8, seed=11)
    times, pieces = [], []
    started = time.perf_counter()
    for piece in generation.chunks(min_chars=8, max_wait=0.01, pace=lambda: 0.1):
        times.append(time.perf_counter() - started)
        pieces.append(piece)
    assert "".join(pieces) == generate(trained_model, "ROMEO:", 600, temperature=0.8, seed=11)
    assert len(pieces) < 600 / 8
    # Each piece but the last (which comes at the end) waited 0.1 s, or filled what a request may hold.
    for (earlier, later), piece in zip(itertools.pairwise(times[:-1]), pieces[1:-1]):
        assert later - earlier > 0.09 or len(piece) >= batching.MAX_AHEAD_CHARS


def test_the_stepper_keeps_its_matrices_float32_and_row_major(compiled_engine):
    # The compiled step is compiled for row-major float32 arrays, and its product reads each weight
    # panel as one block; a transposed view, or a stack of them, would be column-major. The reference
    # engine's product reduces over the rows of a row-major matrix.
    for cell in ("rnn", "gru", "lstm"):
        stepper = Stepper(CharRNN(VOCAB, cell=cell, hidden_size=32, num_layers=3).eval(), engines.REFERENCE)
        matrices = list(stepper.weights)
        if compiled_engine is not None:
            matrices += list(stepper.using(compiled_engine)._weights)
        assert all(matrix.flags.c_contiguous and matrix.dtype == np.float32 for matrix in matrices), cell


def test_the_first_characters_are_not_held_back_by_the_pace(trained_model, scheduler):
    # Under load the pace spaces the pieces out, but the first characters go as soon as they are there.
    pieces, asked_after = [], []

    def pace():
        asked_after.append(len(pieces))
        return 0.2

    generation = scheduler.submit(trained_model, "ROMEO:", 100, temperature=0.8, seed=3)
    for piece in generation.chunks(min_chars=8, max_wait=0.01, pace=pace):
        pieces.append(piece)
    assert "".join(pieces) == generate(trained_model, "ROMEO:", 100, temperature=0.8, seed=3)
    assert asked_after and min(asked_after) == 1  # first asked once the first piece was out
