"""Load test: ``python app.py`` on a free loopback port, hammered by concurrent clients.

    python -m benchmarks.load            # 500 mixed requests from 16 clients
    python -m benchmarks.load --quick    # 48 requests from 4 clients (a smoke test)

The app serves the shipped models (``models/``). Requests go over plain HTTP to the Gradio API
(the README's curl flow: ``POST /gradio_api/call/generate``, then ``GET`` its event stream), a
shuffled mix of three kinds:

* good: every model, temperatures 0-2, top-k/top-p, fixed and random seeds, mostly short
  continuations (every one must complete);
* unusual text: an empty prompt, control characters, emoji, Chinese, right-to-left text,
  characters outside the vocabulary, a prompt at the length cap (must complete too: unknown
  characters are skipped);
* bad: NaN, infinities, negative and huge numbers, an unknown cell or hidden size, a prompt over
  the cap, a lone surrogate, a path as the cell, wrong types (each must be refused with its own
  clear message).

It prints the outcome by kind (an "unexpected" outcome is a good request that failed, or a bad
one refused with the wrong message, or any timeout), the latency of good requests, and the
server's resident memory (VmRSS of its process and any child process) after a warm-up that loads
every model and after each of ``--parts`` equal parts of the requests (default 4), so that one can see whether it levels off.
Exit status 1 when anything unexpected happened. Only loopback is used.

    python -m benchmarks.load --requests 1500 --parts 5   # the README's memory figures
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.server import child_processes, free_port, start_app
from rnn_demo.cli.arguments import whole_number
from rnn_demo.serving.requests import MAX_NEW_CHARS, MAX_PROMPT_CHARS, MAX_TEMPERATURE

REQUEST_TIMEOUT = 120.0  # seconds for one request, queueing included


@dataclass(frozen=True)
class Request:
    kind: str  # "good", "unusual text" or "bad"
    label: str  # what is being tried, for the report
    body: str  # the JSON body of the POST (raw: NaN and lone surrogates need it)
    expect: str | None  # for bad requests: the message the refusal must contain


@dataclass(frozen=True)
class Outcome:
    request: Request
    ok: bool  # completed (good, unusual) or refused with the expected message (bad)
    detail: str  # "completed", "refused as expected", or what went wrong
    seconds: float


def body_of(*values, raw: str | None = None) -> str:
    """The JSON body for /generate with these 8 values (``raw`` replaces the whole data list)."""
    data = raw if raw is not None else json.dumps(list(values), ensure_ascii=True)
    return '{"data": ' + data + "}"


def good_requests(models: list[dict], count: int, rng: random.Random) -> list[Request]:
    requests = []
    prompts = ["ROMEO:", "First Citizen:\n", "To be, or not to be", "KING HENRY VI:\nMy lords, ", "\n"]
    for index in range(count):
        model = models[index % len(models)]
        length = 500 if index % 25 == 0 else rng.choice([10, 20, 40, 80])
        temperature = rng.choice([0.0, 0.3, 0.8, 1.0, 1.5, MAX_TEMPERATURE])
        top_k = rng.choice([0, 0, 5, 40])
        top_p = rng.choice([1.0, 1.0, 0.9, 0.5])
        seed = rng.choice([-1, rng.randrange(0, 2**31), 2**63 - 1])
        values = (rng.choice(prompts), model["cell"], model["hidden_size"], temperature, length, top_k, top_p, seed)
        requests.append(Request("good", f"{model['name']} t={temperature} n={length}", body_of(*values), None))
    return requests


UNUSUAL_PROMPTS = {
    "empty prompt": "",
    "control characters": "ROMEO:\x00\x07\x1b[31m\r\t\x7f",
    "emoji": "ROMEO: 😀🎭🪶",
    "Chinese": "罗密欧：我爱你",
    "right-to-left": "רומאו: שלום \u202eevil\u202c",
    "out of vocabulary": "ÆØÅ ß ñ € ¿ ™",
    "prompt at the cap": "x" * MAX_PROMPT_CHARS,
    "one character": "a",
}


def unusual_requests(model: dict, count: int) -> list[Request]:
    labels = list(UNUSUAL_PROMPTS)
    return [
        Request(
            "unusual text",
            labels[i % len(labels)],
            body_of(UNUSUAL_PROMPTS[labels[i % len(labels)]], model["cell"], model["hidden_size"], 0.8, 20, 0, 1.0, i),
            None,
        )
        for i in range(count)
    ]


def bad_cases(model: dict) -> list[tuple[str, str, str]]:
    """(label, body, expected message) for each kind of bad input."""
    cell, size = model["cell"], model["hidden_size"]

    def with_(index: int, value: str) -> str:
        values = [json.dumps("ROMEO:"), json.dumps(cell), str(size), "0.8", "20", "0", "1.0", "1"]
        values[index] = value
        return body_of(raw="[" + ", ".join(values) + "]")

    return [
        ("temperature NaN", with_(3, "NaN"), "temperature must be a finite number"),
        ("temperature inf", with_(3, "Infinity"), "temperature must be a finite number"),
        ("temperature -inf", with_(3, "-Infinity"), "temperature must be a finite number"),
        ("temperature negative", with_(3, "-0.5"), f"temperature must be between 0 (greedy) and {MAX_TEMPERATURE}"),
        ("temperature huge", with_(3, "1e308"), f"temperature must be between 0 (greedy) and {MAX_TEMPERATURE}"),
        ("temperature as text", with_(3, '"hot"'), "temperature must be a finite number"),
        ("max_new_chars huge", with_(4, "1000000000000"), f"max_new_chars must be between 1 and {MAX_NEW_CHARS:,}"),
        ("max_new_chars negative", with_(4, "-5"), f"max_new_chars must be between 1 and {MAX_NEW_CHARS:,}"),
        ("max_new_chars zero", with_(4, "0"), f"max_new_chars must be between 1 and {MAX_NEW_CHARS:,}"),
        ("max_new_chars NaN", with_(4, "NaN"), "max_new_chars must be a whole number"),
        ("max_new_chars fraction", with_(4, "10.5"), "max_new_chars must be a whole number"),
        ("top_k negative", with_(5, "-1"), "top_k must be 0 (off) or more"),
        ("top_p zero", with_(6, "0"), "top_p must be above 0 and at most 1"),
        ("top_p NaN", with_(6, "NaN"), "top_p must be a finite number"),
        ("seed negative", with_(7, "-7"), "seed must be -1 (random) or between 0 and"),
        ("seed huge", with_(7, str(2**70)), "seed must be -1 (random) or between 0 and"),
        ("unknown cell", with_(1, '"transformer"'), "Unknown cell 'transformer'"),
        ("cell as a path", with_(1, '"../../etc/passwd"'), "Unknown cell '../../etc/passwd'"),
        ("cell null", with_(1, "null"), "cell must be text"),
        ("unknown hidden size", with_(2, "99999"), f"No {cell} model with hidden size 99999"),
        ("hidden size as text", with_(2, '"abc"'), "hidden_size must be a whole number"),
        ("prompt over the cap", with_(0, json.dumps("x" * (MAX_PROMPT_CHARS + 1))), f"the limit is {MAX_PROMPT_CHARS:,}"),
        ("prompt a number", with_(0, "123"), "prompt must be text"),
        ("prompt a list", with_(0, '["a", "b"]'), "prompt must be text"),
        (
            "lone surrogate",
            with_(0, '"ROMEO:\\ud800"'),
            "prompt must be valid Unicode text: it holds a lone surrogate (U+D800)",
        ),
    ]


def bad_requests(model: dict, count: int) -> list[Request]:
    cases = bad_cases(model)
    return [
        Request("bad", cases[i % len(cases)][0], cases[i % len(cases)][1], cases[i % len(cases)][2])
        for i in range(count)
    ]


def call(http: httpx.Client, base: str, api_name: str, body: str) -> tuple[str, str]:
    """POST a call and read its event stream: (last event name, its data)."""
    posted = http.post(f"{base}/gradio_api/call/{api_name}", content=body, headers={"Content-Type": "application/json"})
    if posted.status_code != 200:
        return f"http {posted.status_code}", posted.text[:300]
    event, data = "none", ""
    with http.stream("GET", f"{base}/gradio_api/call/{api_name}/{posted.json()['event_id']}") as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
                if event in ("complete", "error"):
                    break
    return event, data


def run_one(http: httpx.Client, base: str, request: Request) -> Outcome:
    started = time.perf_counter()
    try:
        event, data = call(http, base, "generate", request.body)
    except httpx.HTTPError as error:
        return Outcome(request, False, f"{type(error).__name__}: {error}", time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if request.expect is None:
        if event == "complete" and data.startswith('["'):
            return Outcome(request, True, "completed", seconds)
        return Outcome(request, False, f"{event}: {data[:200]}", seconds)
    if event == "error" and request.expect in data:
        return Outcome(request, True, "refused as expected", seconds)
    return Outcome(request, False, f"{event}: {data[:200]} (expected {request.expect!r})", seconds)


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def server_rss_kib(pid: int) -> int:
    """Resident memory of the server: its process and its child processes (training runs, if any)."""
    return rss_kib(pid) + sum(rss_kib(child) for child in child_processes(pid))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def memory_line(rss_before: int, readings: list[tuple[int, int]]) -> str:
    """The server's VmRSS after warm-up and after each part: ``readings`` holds (requests sent
    so far, VmRSS in KiB) pairs."""
    steps, previous = [], rss_before
    for sent, rss in readings:
        steps.append(f"{rss / 1024:.1f} MiB after {sent:,} requests ({(rss - previous) / 1024:+.1f})")
        previous = rss
    return f"server memory (VmRSS): {rss_before / 1024:.1f} MiB after warm-up, " + ", ".join(steps)


def report(
    outcomes: list[Outcome], clients: int, wall: float, rss_before: int, readings: list[tuple[int, int]]
) -> None:
    print(f"{len(outcomes)} requests from {clients} clients in {wall:.1f} s")
    print("| kind | requests | as expected | unexpected |")
    print("|---|---:|---:|---:|")
    for kind in ("good", "unusual text", "bad"):
        of_kind = [o for o in outcomes if o.request.kind == kind]
        ok = sum(o.ok for o in of_kind)
        print(f"| {kind} | {len(of_kind)} | {ok} | {len(of_kind) - ok} |")
    labels = Counter(o.request.label for o in outcomes if o.request.kind == "bad")
    refused = Counter(o.request.label for o in outcomes if o.request.kind == "bad" and o.ok)
    print(
        f"bad inputs refused with their own message: {sum(refused.values())}/{sum(labels.values())} "
        f"({len(labels)} kinds: {', '.join(sorted(labels))})"
    )
    good = [o.seconds for o in outcomes if o.request.kind == "good" and o.ok]
    if good:
        print(
            f"good-request latency (queueing included): p50 {percentile(good, 0.5):.2f} s, "
            f"p95 {percentile(good, 0.95):.2f} s, max {max(good):.2f} s"
        )
        slowest = sorted((o for o in outcomes if o.ok and o.request.kind != "bad"), key=lambda o: -o.seconds)[:3]
        print("slowest: " + ", ".join(f"{o.request.label} ({o.seconds:.2f} s)" for o in slowest))
    print(memory_line(rss_before, readings))
    for outcome in [o for o in outcomes if not o.ok][:10]:
        print(f"unexpected: {outcome.request.kind} / {outcome.request.label}: {outcome.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=whole_number(10, 5_000), default=500, help="requests in all")
    parser.add_argument("--clients", type=whole_number(1, 64), default=16, help="concurrent clients")
    parser.add_argument("--seed", type=whole_number(0), default=0, help="seed of the request mix")
    parser.add_argument(
        "--parts", type=whole_number(1, 20), default=4, help="read the server's memory after each of this many parts"
    )
    parser.add_argument("--quick", action="store_true", help="48 requests from 4 clients (a smoke test)")
    args = parser.parse_args(argv)
    total, clients = (48, 4) if args.quick else (args.requests, args.clients)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_app(port)
    try:
        with httpx.Client(timeout=REQUEST_TIMEOUT) as http:
            event, data = call(http, base, "models", '{"data": []}')
            if event != "complete":
                raise RuntimeError(f"/models failed: {event} {data[:200]}")
            models = json.loads(data)[0]
            if not models:
                raise RuntimeError("the app serves no models")
            for model in models:  # warm-up: load every model once, so memory is measured after
                warm = body_of("ROMEO:", model["cell"], model["hidden_size"], 0.8, 5, 0, 1.0, 0)
                if call(http, base, "generate", warm)[0] != "complete":
                    raise RuntimeError(f"warm-up of {model['name']} failed")
        rss_before = server_rss_kib(process.pid)

        rng = random.Random(args.seed)
        n_bad, n_unusual = max(total // 4, len(bad_cases(models[0]))), total // 8  # every bad kind at least once
        smallest = min(models, key=lambda m: m["params"])
        requests = (
            good_requests(models, total - n_bad - n_unusual, rng)
            + unusual_requests(smallest, n_unusual)
            + bad_requests(smallest, n_bad)
        )
        rng.shuffle(requests)

        local = threading.local()
        addresses = itertools.count(1)

        def send(request: Request) -> Outcome:
            if not hasattr(local, "http"):  # each client a visitor of its own, as a Space's proxy names them
                address = f"192.0.2.{next(addresses)}"
                local.http = httpx.Client(timeout=REQUEST_TIMEOUT, headers={"X-Forwarded-For": address})
            return run_one(local.http, base, request)

        # Memory is read after each part: the first ones also fill the server's thread pool and
        # its allocator's free lists; a leak would keep growing part after part.
        started = time.perf_counter()
        outcomes = []
        readings = []
        with ThreadPoolExecutor(max_workers=clients) as pool:
            for part in range(args.parts):
                outcomes += pool.map(
                    send, requests[part * len(requests) // args.parts : (part + 1) * len(requests) // args.parts]
                )
                time.sleep(1.0)  # let the server settle before reading its memory
                readings.append((len(outcomes), server_rss_kib(process.pid)))
        wall = time.perf_counter() - started
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} during the test")
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    report(outcomes, clients, wall, rss_before, readings)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
