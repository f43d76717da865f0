"""Training in the page, through the real server: does generation keep serving, and does memory stay bounded?

    python -m benchmarks.training_service            # 30 generations idle and 30 during a training; 8 trainings
    python -m benchmarks.training_service --quick    # 10 and 10; 3 trainings (a smoke test)

Starts ``python app.py`` on a free loopback port (the shipped models, offline) with
``RNN_DEMO_TRAIN_MAX_MODELS=2``, then through ``gradio_client``:

1. ``/generate`` latency: one request after another (lstm-h256, 200 characters, the whole request
   timed), first with the server idle, then while a ``/train`` of tiny shakespeare runs (lstm,
   hidden 128, the training process on one thread). The target: p95 during training at most 2x idle.
2. Memory under repeated trainings: short ``/train`` runs one after another, each model then used
   once by ``/generate_trained`` (so it is loaded in the server); the
   server's VmRSS (its process and its child processes) after each. With at most 2 models kept,
   older ones are evicted and their memory must come back: the last readings stay flat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from benchmarks import SHIPPED_TEXT
from benchmarks.load import percentile, server_rss_kib
from benchmarks.server import free_port, start_app

KEPT_MODELS = 2
GENERATE = {
    "prompt": "ROMEO:", "cell": "lstm", "hidden_size": 256, "temperature": 0.8, "max_new_chars": 200, "top_k": 0, "top_p": 1.0
}  # fmt: skip


def generation_latencies(client, count: int, first_seed: int) -> list[float]:
    """Seconds of ``count`` /generate requests made one after another."""
    seconds = []
    for index in range(count):
        started = time.perf_counter()
        text = client.predict(**GENERATE, seed=first_seed + index, api_name="/generate")
        seconds.append(time.perf_counter() - started)
        if len(text) != len(GENERATE["prompt"]) + GENERATE["max_new_chars"]:
            raise SystemExit(f"training_service: a generation ended short ({len(text)} characters)")
    return seconds


def wait_for_steps(job, timeout: float = 60.0) -> None:
    """Until the training has logged its first steps (its process started and is training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        updates = job.outputs()
        if updates and updates[-1]["step"] > 0:
            return
        if job.done():
            raise SystemExit(f"training_service: the training ended early: {job.exception()}")
        time.sleep(0.1)
    raise SystemExit("training_service: the training logged no step within a minute")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=30, help="/generate requests idle, and again during training")
    parser.add_argument("--trainings", type=int, default=8, help="short trainings for the memory readings")
    parser.add_argument("--quick", action="store_true", help="10 generations each way and 3 trainings")
    args = parser.parse_args(argv)
    generations = 10 if args.quick else args.generations
    trainings = 3 if args.quick else args.trainings

    from gradio_client import Client

    text = SHIPPED_TEXT.read_text(encoding="utf-8")
    os.environ["RNN_DEMO_TRAIN_MAX_MODELS"] = str(KEPT_MODELS)  # read by the app start_app launches
    process = start_app(free_port())
    try:
        client = Client(f"http://127.0.0.1:{process.args[-1]}/", verbose=False, analytics_enabled=False, ssl_verify=False)
        generation_latencies(client, 3, first_seed=0)  # loads the model, warms the engine
        idle = generation_latencies(client, generations, first_seed=100)

        training = client.submit(text, "lstm", 128, 120, api_name="/train")
        wait_for_steps(training)
        busy = generation_latencies(client, generations, first_seed=200)
        still_training = not training.done()
        training.cancel()  # ends the run: the readings below start from a server with no training

        rss = [("after the generations", server_rss_kib(process.pid))]
        for index in range(trainings):
            final = client.predict(text[:100_000], "lstm", 128, 5, api_name="/train")
            client.predict(final["model_id"], "ROMEO:", 0.8, 50, 0, 1.0, index, api_name="/generate_trained")
            rss.append((f"after training {index + 1}", server_rss_kib(process.pid)))
    finally:
        process.terminate()
        process.wait()

    print(f"\n/generate ({GENERATE['cell']}-h{GENERATE['hidden_size']}, {GENERATE['max_new_chars']} characters, "
          f"one request at a time), {generations} requests each, {os.cpu_count()} CPUs")
    print("\n| server | p50 | p95 | max |\n|---|---:|---:|---:|")
    for name, values in (("idle", idle), ("training lstm-h128 (1 thread)", busy)):
        print(f"| {name} | {statistics.median(values):.3f} s | {percentile(values, 0.95):.3f} s | {max(values):.3f} s |")
    print(f"\np95 during training / idle: {percentile(busy, 0.95) / percentile(idle, 0.95):.2f}x (target ≤ 2x)"
          + ("" if still_training else "; note: the training ended before the last generation"))
    print(f"\nserver memory (VmRSS with its child processes), at most {KEPT_MODELS} trained models kept:\n")
    print("| reading | VmRSS |\n|---|---:|")
    for name, kib in rss:
        print(f"| {name} | {kib / 1024:.1f} MiB |")


if __name__ == "__main__":
    main()
