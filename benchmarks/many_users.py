"""Many users at once: aggregate speed and time to the first characters, through the real server.

    python -m benchmarks.many_users            # 1, 4 and 16 streams of 500 characters, lstm-h256, 3 runs
    python -m benchmarks.many_users --quick    # 1 and 4 streams of 200 characters, one run, a smoke test

Starts ``python app.py`` on a free loopback port (serving --models-dir, one torch thread, offline),
then for each number of users submits that many /generate streams at once, one
``gradio_client.Client`` per user, each a visitor of its own (``X-Forwarded-For``; distinct seeds),
all read by one thread. Reported per row:
aggregate new characters per second (all streams, first submit to last end); the median and
95th percentile of the time from submit to the first update (the app sends the prompt alone
first) and to the first update holding generated characters; the median and 95th percentile of
``/models`` answered meanwhile (another client asks for it every 0.1 s while the streams run: what
another visitor waits); and the CPU seconds the server and this (client) process used meanwhile.
The clients run on the same machine as the server and take CPU from it. Each row is run
``--repeats`` times (interleaved: 1, 4, 16, 1, 4, 16, ...) and the run with the median aggregate
speed is shown, with the range of all runs.

The limit is the engine's own batched step (``rnn_demo.generation.engine.step``, N states stepped
together, no sampling, no server), in characters per second, measured in this process (the server
idle) at the start of each round of runs. "vs batched-step limit" sets each run against the fastest
of those measurements: on this VM the same step runs ±15% faster or slower from one minute to the
next, and a run set against a slow moment's limit would look better than it is. A line gives the
limits. The last line runs 1 and the most streams through the app's own worker and stream in this
process, without Gradio or HTTP (a thread reads each stream, as Gradio's handlers do): what the
generation code gives before the server's share of the two cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.server import PROJECT_ROOT, free_port, start_app
from rnn_demo.generation import engine
from rnn_demo.model import CharRNN

MODELS_DIR = PROJECT_ROOT / "models"
PROMPT = "ROMEO:"
# How often the streams' updates are looked at (see run_streams): the times to the first update
# and to the first characters are up to this late.
READ_EVERY_SECONDS = 0.002
MODELS_EVERY_SECONDS = 0.1  # how often the other visitor asks for /models while the streams run


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process so far (Linux /proc), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values: list[float]) -> tuple[float, float]:
    """(median, 95th percentile, nearest rank)."""
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def ask_for_models(client, stop: threading.Event, seconds: list[float]) -> None:
    """Another visitor: /models every MODELS_EVERY_SECONDS until ``stop``, each answer's time kept."""
    while not stop.wait(MODELS_EVERY_SECONDS):
        started = time.perf_counter()
        client.predict(api_name="/models")
        seconds.append(time.perf_counter() - started)


def run_streams(clients, users: int, arguments: dict, first_seed: int, server_pid: int | None = None,
                other_visitor=None) -> dict:
    """``users`` concurrent /generate streams: aggregate chars/s, latencies and CPU used; with
    ``other_visitor`` (a client), /models asked meanwhile. ``clients`` is one client, or a list of
    them taken in turn (the app holds 8 requests of one visitor at once: one client per user).

    The streams are read by this thread alone, which looks at every job's updates so far
    (``job.outputs()``) every READ_EVERY_SECONDS. Iterating a job instead (``for update in job``)
    takes a thread per stream that looks every millisecond: with 16 of them this process used
    about twice the CPU, taken from the server it shares the machine with."""
    first_update = [None] * users
    first_chars = [None] * users
    lengths = [0] * users
    errors = []

    server_before = cpu_seconds(server_pid) if server_pid else None
    models_seconds: list[float] = []
    stop = threading.Event()
    visitor = threading.Thread(target=ask_for_models, args=(other_visitor, stop, models_seconds), daemon=True)
    if other_visitor is not None:
        visitor.start()
    client_before = time.process_time()
    started = time.perf_counter()
    jobs, submitted = [], []
    for index in range(users):
        submitted.append(time.perf_counter())
        client = clients[index % len(clients)] if isinstance(clients, list) else clients
        jobs.append(client.submit(**arguments, seed=first_seed + index, api_name="/generate"))
    reading = set(range(users))
    while reading:
        time.sleep(READ_EVERY_SECONDS)
        for index in sorted(reading):
            job = jobs[index]
            finished = job.done()  # asked first: the updates read after it are then all there
            updates = job.outputs()
            now = time.perf_counter() - submitted[index]
            if updates and first_update[index] is None:
                first_update[index] = now
            if first_chars[index] is None and any(len(update) > len(PROMPT) for update in updates):
                first_chars[index] = now
            if finished:
                reading.discard(index)
                lengths[index] = len(updates[-1]) - len(PROMPT) if updates else 0
                if job.exception() is not None:  # the app refused the request, or it failed
                    errors.append(job.exception())
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    stop.set()
    if other_visitor is not None:
        visitor.join()
    server_after = cpu_seconds(server_pid) if server_pid else None
    server_cpu = None
    if server_before is not None and server_after is not None:
        server_cpu = server_after - server_before
    if errors:
        raise RuntimeError(f"{len(errors)} of {users} streams failed: {errors[0]}")
    expected = arguments["max_new_chars"]
    if any(length != expected for length in lengths):
        raise RuntimeError(f"streams ended short: {lengths}")
    return {
        "chars_per_second": sum(lengths) / seconds,
        "first_update": percentiles(first_update),
        "first_chars": percentiles(first_chars),
        "models": percentiles(models_seconds) if models_seconds else None,
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "seconds": seconds,
    }


def batched_step_limit(model: CharRNN, batch: int, steps: int) -> float:
    """Characters per second of ``batch`` states stepped together: the most a server can reach."""
    weights = engine.Weights.from_model(model)
    tokens = np.zeros(batch, dtype=np.int64)
    state = engine.zero_state(weights, batch)
    for _ in range(10):  # warm up
        engine.step(weights, tokens, state)
    started = time.perf_counter()
    for _ in range(steps):
        _, state = engine.step(weights, tokens, state)
    return batch * steps / (time.perf_counter() - started)


def worker_alone(models_dir: Path, cell: str, hidden_size: int, streams: int, chars: int, temperature: float) -> float:
    """Aggregate chars/s of ``streams`` generations through the app's own worker and stream, in this
    process, each read by a thread of its own as Gradio's handlers would: the server without Gradio."""
    import threading

    from rnn_demo.serving.streaming import generate_stream
    from rnn_demo.serving.worker import GenerationWorker
    from rnn_demo.serving.zoo import ModelZoo

    zoo, worker = ModelZoo(models_dir), GenerationWorker()
    zoo.weights(cell, hidden_size)  # read before the clock starts, as the app's warm-up does

    def read(seed: int) -> None:
        for _ in generate_stream(zoo, PROMPT, cell, hidden_size, temperature, chars, 0, 1.0, seed, worker=worker):
            pass

    threads = [threading.Thread(target=read, args=(seed,)) for seed in range(streams)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return streams * chars / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", default=str(MODELS_DIR), help="folder of model folders to serve")
    parser.add_argument("--cell", default="lstm", help="cell of the model to use")
    parser.add_argument("--hidden-size", type=int, default=256, help="hidden size of the model to use")
    parser.add_argument("--users", default="1,4,16", help="comma-separated numbers of concurrent streams")
    parser.add_argument("--chars", type=int, default=500, help="new characters per stream")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each row (the median run is shown)")
    parser.add_argument("--quick", action="store_true", help="1 and 4 streams of 200 characters, one run, a smoke test")
    args = parser.parse_args(argv)
    users = [1, 4] if args.quick else [int(n) for n in args.users.split(",")]
    chars = 200 if args.quick else args.chars
    repeats = 1 if args.quick else args.repeats
    models_dir = Path(args.models_dir).resolve()
    model_dir = models_dir / f"{args.cell}-h{args.hidden_size}"

    from gradio_client import Client

    torch.set_num_threads(1)  # as the app serves
    model = CharRNN.from_pretrained(model_dir).eval()
    limit_batch, limit_steps = max(users), 50 if args.quick else 500
    limits = []
    process = start_app(free_port(), models_dir)
    try:
        url = f"http://127.0.0.1:{process.args[-1]}/"
        # ssl_verify=False: the URL is plain http on loopback, so no certificate is ever checked, but
        # gradio_client would otherwise build a certificate-loading SSL context for every request
        # (one httpx.post each), ~30 ms of this process's CPU that delayed 16 joins by ~0.5 s here.
        # One client per user, each a visitor of its own (as a Space's proxy names them).
        clients = [Client(url, verbose=False, analytics_enabled=False, ssl_verify=False,
                          headers={"X-Forwarded-For": f"192.0.2.{n + 1}"}) for n in range(max(users))]  # fmt: skip
        client = clients[0]
        other_visitor = Client(url, verbose=False, analytics_enabled=False, ssl_verify=False,
                               headers={"X-Forwarded-For": "192.0.2.200"})  # fmt: skip
        arguments = dict(
            prompt=PROMPT,
            cell=args.cell,
            hidden_size=args.hidden_size,
            temperature=args.temperature,
            max_new_chars=chars,
            top_k=0,
            top_p=1.0,
        )
        run_streams(client, 1, {**arguments, "max_new_chars": 20}, first_seed=0)  # loads the model
        runs: dict[int, list[dict]] = {n: [] for n in users}
        for repeat in range(repeats):
            # The limit is measured in each round, just before its runs (the server idle).
            limits.append(batched_step_limit(model, limit_batch, limit_steps))
            for n in users:
                run = run_streams(clients, n, arguments, 1_000 * n + 100 * repeat, process.pid, other_visitor)
                runs[n].append(run)
        rows = []
        for n in users:
            ordered = sorted(runs[n], key=lambda run: run["chars_per_second"])
            median = ordered[len(ordered) // 2]
            median["range"] = (ordered[0]["chars_per_second"], ordered[-1]["chars_per_second"])
            rows.append((n, median))
    except RuntimeError as error:  # a stream failed or ended short: say why, without a traceback
        raise SystemExit(f"many_users: {error}") from None
    finally:
        process.terminate()
        process.wait()

    single = rows[0][1]["chars_per_second"]
    print(f"{args.cell}-h{args.hidden_size}, {chars} new characters per stream, temperature {args.temperature}, "
          f"server and clients on this machine ({os.cpu_count()} CPUs); median of {repeats} runs")
    print("| streams | aggregate chars/s | (range) | per stream chars/s | vs 1 stream | vs batched-step limit "
          "| first update p50 / p95 | first characters p50 / p95 | /models meanwhile p50 / p95 | wall | server CPU "
          "| client CPU |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, row in rows:
        server_cpu = f"{row['server_cpu']:.2f} s" if row["server_cpu"] is not None else "n/a"
        models = f"{row['models'][0]:.3f} / {row['models'][1]:.3f} s" if row["models"] else "-"
        print(
            f"| {n} | {row['chars_per_second']:,.0f} | {row['range'][0]:,.0f}–{row['range'][1]:,.0f} "
            f"| {row['chars_per_second'] / n:,.0f} "
            f"| {row['chars_per_second'] / single:.2f}x | {row['chars_per_second'] / max(limits):.2f}x "
            f"| {row['first_update'][0]:.2f} / {row['first_update'][1]:.2f} s "
            f"| {row['first_chars'][0]:.2f} / {row['first_chars'][1]:.2f} s | {models} "
            f"| {row['seconds']:.2f} s | {server_cpu} | {row['client_cpu']:.2f} s |"
        )
    print(
        f"batched-step limit: {max(limits):,.0f} chars/s ({limit_batch} states stepped together, no sampling, no "
        f"server; the fastest of the rounds' {', '.join(f'{limit:,.0f}' for limit in limits)})"
    )
    alone = {n: worker_alone(models_dir, args.cell, args.hidden_size, n, chars, args.temperature) for n in (1, max(users))}
    print(
        f"the worker without Gradio (this process, a thread per stream): 1 stream {alone[1]:,.0f} chars/s, "
        f"{max(users)} streams {alone[max(users)]:,.0f} chars/s ({alone[max(users)] / alone[1]:.2f}x)"
    )


if __name__ == "__main__":
    main()
