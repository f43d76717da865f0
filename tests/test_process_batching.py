"""Continuous batching in a child process (rnn_demo/serving/generation_process.py): the texts of
rnn_demo.generation.sampling.generate, back-pressure across the processes, cancel, a child that dies or is
closed, and a parent that dies."""

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import Pipe

import pytest
from conftest import MIXED_REQUESTS, REPO_ROOT, cpu_seconds, generate_with, wait_until

from rnn_demo.generation import engines
from rnn_demo.generation.sampling import generate
from rnn_demo.model import CharRNN
from rnn_demo.serving import streaming
from rnn_demo.serving.batching import BatchScheduler, GenerationFailed, SchedulerFull
from rnn_demo.serving.generation_process import ProcessScheduler, serve


def process_cpu_seconds(pid: int) -> float:
    return cpu_seconds(f"/proc/{pid}/stat")


def process_exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


@pytest.fixture(scope="module")
def scheduler():
    scheduler = ProcessScheduler(idle_seconds=1.0)
    yield scheduler
    scheduler.close()


REQUESTS = MIXED_REQUESTS[:16]


def test_concurrent_requests_each_give_the_text_they_give_alone(trained_model, scheduler):
    alone = [generate(trained_model, **request) for request in REQUESTS]
    long_prompt = "ROMEO: " * 10  # longer than PRIME_BY_STEPS_MAX: primed by a forward call in the child
    texts = [None] * (len(REQUESTS) + 1)

    def run(i):
        request = REQUESTS[i] if i < len(REQUESTS) else dict(prompt=long_prompt, max_new_chars=80, seed=9)
        texts[i] = generate_with(scheduler, trained_model, **request)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert texts == alone + [generate(trained_model, long_prompt, 80, seed=9)]
    assert wait_until(lambda: scheduler.active_count() == 0)


def test_two_models_are_served_apart_and_a_model_gone_here_is_forgotten_there(trained_model, scheduler):
    other = CharRNN(trained_model.vocab, cell="gru", hidden_size=48, num_layers=2).eval()
    both = [scheduler.submit(model, "ROMEO:", 100, temperature=0.9, seed=4) for model in (trained_model, other)]
    texts = ["".join(generation.chunks()) for generation in both]
    assert texts == [generate(model, "ROMEO:", 100, temperature=0.9, seed=4) for model in (trained_model, other)]
    assert texts[0] != texts[1]
    child = scheduler._child
    assert len(child.models_sent) == 2
    del other, both
    gc.collect()
    generate_with(scheduler, trained_model, "a", 5, seed=1)  # the next request tells the child to drop its copy
    assert len(child.models_sent) == 1


def test_a_request_is_drawn_only_a_little_ahead_of_its_reader(trained_model, monkeypatch):
    # The child keeps to the reference engine: loading the compiled one would use its CPU meanwhile.
    monkeypatch.setenv("RNN_DEMO_ENGINE", "reference")
    scheduler = ProcessScheduler(idle_seconds=1.0, max_ahead=16)
    try:
        generation = scheduler.submit(trained_model, "ROMEO:", 500, temperature=0.8, seed=21)
        assert wait_until(lambda: generation.remaining == 500 - 16, timeout=60)  # the child starts first
        cpu_before = process_cpu_seconds(scheduler.child_pid())
        time.sleep(0.3)  # nobody reads: no more steps, and no spinning while it waits
        assert generation.remaining == 500 - 16
        assert process_cpu_seconds(scheduler.child_pid()) - cpu_before < 0.05
        text = "".join(generation.chunks(min_chars=100))  # more than it may hold: still served
        assert text == generate(trained_model, "ROMEO:", 500, temperature=0.8, seed=21, engine=engines.REFERENCE)
    finally:
        scheduler.close()


def test_cancel_frees_the_slot_at_once_and_stops_the_work(trained_model, monkeypatch):
    monkeypatch.setenv("RNN_DEMO_ENGINE", "reference")  # as above: only the steps use the child's CPU
    scheduler = ProcessScheduler(max_active=2, idle_seconds=1.0, max_ahead=10_000)
    try:  # longer than max_ahead: however fast the child draws, they cannot finish unread
        first = scheduler.submit(trained_model, "a", 50_000, seed=1)
        second = scheduler.submit(trained_model, "b", 50_000, seed=2)
        with pytest.raises(SchedulerFull, match="already generating 2 texts"):
            scheduler.submit(trained_model, "c", 10, seed=3)
        first.take(5, timeout=60)
        first.cancel()
        assert scheduler.active_count() == 1
        second.cancel()
        assert scheduler.active_count() == 0
        time.sleep(0.1)  # a tick under way ends
        cpu_before = process_cpu_seconds(scheduler.child_pid())
        time.sleep(0.3)
        assert process_cpu_seconds(scheduler.child_pid()) - cpu_before < 0.05  # the child stopped stepping them
        assert first.remaining > 0 and second.remaining > 0
        expected = generate(trained_model, "c", 10, seed=3, engine=engines.REFERENCE)
        assert generate_with(scheduler, trained_model, "c", 10, seed=3) == expected
    finally:
        scheduler.close()


def test_a_child_that_dies_fails_its_requests_clearly_and_the_next_request_starts_a_new_one(trained_model):
    scheduler = ProcessScheduler(idle_seconds=1.0)
    try:
        generation = scheduler.submit(trained_model, "ROMEO:", 5_000, seed=5)
        first = generation.take(10, timeout=60)
        pid = scheduler.child_pid()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(GenerationFailed, match=r"the generation process stopped \(exit code -9\); try again"):
            first += "".join(generation.chunks())
        assert generate(trained_model, "ROMEO:", 5_000, seed=5).startswith(first)  # what came, came right
        assert wait_until(lambda: scheduler.child_pid() is None)
        assert scheduler.active_count() == 0
        assert generate_with(scheduler, trained_model, "KING", 30, seed=6) == generate(trained_model, "KING", 30, seed=6)
        assert scheduler.child_pid() not in (None, pid)
    finally:
        scheduler.close()


def test_close_ends_the_child_and_its_requests(trained_model):
    scheduler = ProcessScheduler(idle_seconds=1.0)
    generation = scheduler.submit(trained_model, "ROMEO:", 5_000, seed=7)
    generation.take(10, timeout=60)
    pid = scheduler.child_pid()
    scheduler.close()
    assert scheduler.child_pid() is None and not process_exists(pid)
    with pytest.raises(GenerationFailed, match=r"the generation process stopped \(exit code 0\)"):
        "".join(generation.chunks())
    scheduler.close()  # twice is fine


@pytest.mark.slow
def test_the_child_ends_when_its_parent_dies():
    code = (
        "import os, sys\n"
        "from rnn_demo.serving.generation_process import ProcessScheduler\n"
        "from rnn_demo.model import CharRNN\n"
        "scheduler = ProcessScheduler()\n"
        "scheduler.preload(CharRNN('ab', cell='rnn', hidden_size=4, num_layers=1).eval())\n"
        "print(scheduler.child_pid(), flush=True)\n"
        "os.kill(os.getpid(), 9)\n"  # no clean-up of any kind
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    pid = int(completed.stdout.split()[0])
    assert wait_until(lambda: not process_exists(pid), timeout=30)


def test_submit_checks_its_arguments_here_before_starting_anything(trained_model):
    scheduler = ProcessScheduler()
    with pytest.raises(ValueError, match="temperature"):
        scheduler.submit(trained_model, "a", 10, temperature=-1)
    with pytest.raises(ValueError, match="max_new_chars"):
        scheduler.submit(trained_model, "a", -1)
    with pytest.raises(ValueError, match="seed must be an integer"):
        scheduler.submit(trained_model, "a", 10, seed=-5)
    with pytest.raises(TypeError, match="prompt must be a str"):
        scheduler.submit(trained_model, None, 10)
    trained_model.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            scheduler.submit(trained_model, "a", 10)
    finally:
        trained_model.eval()
    assert generate_with(scheduler, trained_model, "a", 0) == ""
    assert scheduler.child_pid() is None  # none of it needed the child


def test_the_childs_loop_reports_a_failed_request_and_goes_on(trained_model, noise_breaks_for_seed_666):
    # The child's side, run here in a thread: a request that breaks comes back as a failure with its
    # reason, and the others are served.
    parent, child = Pipe()
    loop = threading.Thread(target=serve, args=(child, BatchScheduler(idle_seconds=0.3)), daemon=True)
    loop.start()
    from rnn_demo.serving.generation_process import _model_message

    parent.send(("model", 0, *_model_message(trained_model)))
    parent.send(("submit", 1, 0, "ROMEO:", 50, 0.8, 0, 1.0, 666))
    parent.send(("submit", 2, 0, "ROMEO:", 50, 0.8, 0, 1.0, 1))
    parent.send(("submit", 3, 7, "ROMEO:", 50, 0.8, 0, 1.0, 1))  # a model it was never sent
    texts, failures = {}, {}
    while len(failures) < 2 or len(texts.get(2, "")) < 50:
        assert parent.poll(30)
        _, new_texts, new_failures, _ = parent.recv()
        for request, text in new_texts:
            texts[request] = texts.get(request, "") + text
        failures.update(new_failures)
    assert failures == {1: "RuntimeError: the generator broke", 3: "LookupError: the generation process has no model 7"}
    assert texts[2] == generate(trained_model, "ROMEO:", 50, temperature=0.8, seed=1)
    parent.close()
    loop.join(timeout=10)
    assert not loop.is_alive()  # the loop ends with its connection


def test_a_child_that_cannot_be_started_is_a_clear_error_here_and_in_the_app(trained_model, app_models, monkeypatch):

    from rnn_demo.serving import process_start
    from rnn_demo.serving.zoo import ModelZoo

    def no_processes_left(*args, **kwargs):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(process_start.subprocess, "Popen", no_processes_left)
    scheduler = ProcessScheduler()
    with pytest.raises(GenerationFailed, match="could not start the generation process: .*Resource temporarily"):
        scheduler.submit(trained_model, "a", 10)
    assert scheduler.child_pid() is None
    request = dict(prompt="ROMEO:", cell="lstm", hidden_size=64, temperature=0.8, max_new_chars=20, top_k=0, top_p=1.0, seed=1)
    with pytest.raises(streaming.GenerationError, match="The generation failed: could not start the generation process"):
        list(streaming.generate_stream(ModelZoo(app_models), **request, scheduler=scheduler))
