"""A public Space that one visitor cannot break: ``python app.py`` under each attack, and what another
visitor sees meanwhile.

    python -m benchmarks.abuse            # every attack, one row each
    python -m benchmarks.abuse --quick    # fewer requests in each (a smoke test)

Starts ``python app.py`` on a free loopback port (the shipped models, offline), with its temporary
files (Gradio's cache and the app's own root) in a folder of this benchmark's, and runs the attacks
one after another through ``gradio_client`` and plain HTTP. Visitors are told apart by the
``X-Forwarded-For`` address a Space's proxy sets. During each attack another visitor asks
``/generate`` (lstm-h256, 100 characters) one request after another: its p95 latency and its errors
are in the row. Then the disk the app's temporary files take, and the server's resident memory (its
process and its children), before and after the attack. Last, the app is killed (SIGKILL, then
SIGTERM) during a training, and the processes it leaves are counted 5 s later.

Then the largest answer of each endpoint, in JSON bytes, as the caps of docs/api.md allow, read
from the library on the shipped models.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchmarks import SHIPPED_TEXT
from benchmarks.load import percentile, server_rss_kib
from benchmarks.server import free_port, start_app
from rnn_demo.serving.unread_answers import UNREAD_SECONDS

OTHER_VISITOR = "192.0.2.100"
GENERATE = ("ROMEO:", "lstm", 256, 0.8, 100, 0, 1.0)
FLOOD_TEXT_CHARS = 2_000
WAIT_FOR_ENDS = 5.0  # seconds after the app's end by which no process of its may be left (the target)


class OtherVisitor:
    """Another visitor asking /generate, one request after another, while an attack runs."""

    def __init__(self, url: str):
        from gradio_client import Client

        self.client = Client(url, verbose=False, analytics_enabled=False, headers={"X-Forwarded-For": OTHER_VISITOR})
        self.seconds: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OtherVisitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        seed = 0
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                text = self.client.predict(*GENERATE, seed, api_name="/generate")
                if len(text) != len(GENERATE[0]) + GENERATE[4]:
                    self.errors.append(f"a text of {len(text)} characters")
            except Exception as error:  # noqa: BLE001 - every error the visitor meets is counted
                self.errors.append(str(error).splitlines()[0][:80])
            self.seconds.append(time.perf_counter() - started)
            seed += 1

    def summary(self) -> str:
        if not self.seconds:
            return "no request ended"
        errors = f"{len(self.errors)} errors" + (f" ({self.errors[0]})" if self.errors else "")
        return f"{len(self.seconds)} requests, p95 {percentile(self.seconds, 0.95):.2f} s, {errors}"


def disk_mib(folder: Path) -> float:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total / 2**20


def visitor(url: str, address: str):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False, headers={"X-Forwarded-For": address})


def outcome(job) -> tuple[str, float]:
    """("ran" or the refusal's first words, seconds until its answer)."""
    started = time.perf_counter()
    try:
        job.result()
        return "ran", time.perf_counter() - started
    except httpx.HTTPStatusError as error:  # refused at the door (rnn_demo.serving.visitor_caps)
        return f"HTTP {error.response.status_code}", time.perf_counter() - started
    except Exception as error:  # noqa: BLE001
        return str(error).split(":")[0], time.perf_counter() - started


def counted(outcomes: list[tuple[str, float]]) -> str:
    kinds: dict[str, int] = {}
    for kind, _ in outcomes:
        kinds[kind] = kinds.get(kind, 0) + 1
    return "; ".join(f"{count} {kind!r}" if kind != "ran" else f"{count} ran" for kind, count in kinds.items())


# ---- the attacks ---------------------------------------------------------------------------------


def training_flood(url: str, text: str, requests: int) -> str:
    attacker = visitor(url, "198.51.100.1")
    jobs = [attacker.submit(text, "rnn", 16, 5, api_name="/train") for _ in range(requests)]
    outcomes = [outcome(job) for job in jobs]
    line = sum(kind.startswith("You already have a training") for kind, _ in outcomes)
    door = sum(kind == "HTTP 429" for kind, _ in outcomes)
    return (f"{sum(kind == 'ran' for kind, _ in outcomes)} ran; refused at once: {line} by the line ('You already "
            f"have a training running or waiting'), {door} at the door (HTTP 429, 8 requests of one visitor at once)")


def full_line(url: str, text: str, visitors: int) -> str:
    jobs = [visitor(url, f"198.51.100.{10 + n}").submit(text, "rnn", 16, 5, api_name="/train") for n in range(visitors)]
    places = []
    for job in jobs:
        deadline = time.monotonic() + 30
        while not job.outputs() and not job.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        places.append(job.outputs()[0]["waiting"] if job.outputs() else None)
    results = [outcome(job)[0] for job in jobs]
    waited = sorted(p for p in places if p)
    busy = sum(r.startswith("The server is busy") for r in results)
    return f"{results.count('ran')} ran, places in line {waited}; {busy} refused at once: 'The server is busy ... try again in about N s'"


def bad_trainings(url: str, text: str, requests: int) -> str:
    attacker = visitor(url, "198.51.100.2")
    jobs = [attacker.submit(text, "lstm", 1024, 5, api_name="/train") for _ in range(requests)]
    outcomes = [outcome(job) for job in jobs]
    return f"{counted(outcomes)}; slowest answer {max(s for _, s in outcomes):.2f} s"


def wall_budget(url: str, text: str) -> str:
    attacker = visitor(url, "198.51.100.3")
    started = time.perf_counter()
    last = attacker.predict(text, "lstm", 256, 20, 2, api_name="/train")
    took = time.perf_counter() - started
    return f"{len(text) / 1e6:.1f} MB, 2x256 LSTM, 20 s: done after {took:.1f} s, model {'kept' if last['model_id'] else 'lost'}"


def many_models(url: str, text: str, trainings: int) -> str:
    keeper = visitor(url, "198.51.100.4")
    kept = keeper.predict(text, "rnn", 16, 5, api_name="/train")["model_id"]
    attacker = visitor(url, "198.51.100.5")
    ids = [attacker.predict(text, "rnn", 16, 5, api_name="/train")["model_id"] for _ in range(trainings)]
    alive = 0
    for model_id in ids:
        try:
            attacker.predict(model_id, "a", 0.8, 5, 0, 1.0, 1, api_name="/generate_trained")
            alive += 1
        except Exception:  # noqa: BLE001 - an evicted model
            pass
    keeper.predict(kept, "a", 0.8, 5, 0, 1.0, 1, api_name="/generate_trained")  # raises if it was evicted
    return f"{trainings} trainings by one visitor: {alive} of their models kept; another visitor's model still answers"


def uploads(url: str, count: int) -> str:
    answers = []
    for n in range(count):
        body = (f"upload {n}\n" * 10_000).encode()  # about 100 kB, each different
        answers.append(httpx.post(f"{url}gradio_api/upload", files={"files": (f"t{n}.txt", body, "text/plain")},
                                  headers={"X-Forwarded-For": "198.51.100.6"}, timeout=60).status_code)  # fmt: skip
    return f"{count} uploads of 100 kB: {answers.count(200)} taken, {answers.count(429)} refused (HTTP 429)"


def unread_answers(url: str, count: int, server: int) -> str:
    """``count`` /neurons answers at their cap that are never read: one visitor asks again whenever
    the server takes another (it holds 8 of a visitor's requests at once). The server's memory is read
    after each quarter of them, and a minute after the last."""
    from rnn_demo.serving.views import MAX_NEURON_CHARS

    text = SHIPPED_TEXT.read_text(encoding="utf-8")[:MAX_NEURON_CHARS]
    started, taken, refused, readings = time.perf_counter(), 0, 0, []
    while taken < count:
        answer = httpx.post(f"{url}gradio_api/call/neurons", json={"data": [text, "lstm", 512, taken % 2]},
                            headers={"X-Forwarded-For": "198.51.100.8"}, timeout=60)  # fmt: skip
        if answer.status_code == 200:
            taken += 1  # an event id, whose answer is never read
            if taken % max(count // 4, 1) == 0:
                readings.append(f"{server_rss_kib(server) / 1024:.0f}")
        elif answer.status_code == 429:
            refused += 1
            time.sleep(0.05)
        else:
            answer.raise_for_status()
    sent = time.perf_counter() - started
    time.sleep(UNREAD_SECONDS + 5)  # every answer computed, and the unread ones' time out
    readings.append(f"{server_rss_kib(server) / 1024:.0f}")
    return (f"{count} /neurons of {MAX_NEURON_CHARS} characters on lstm-h512 taken in {sent:.0f} s ({refused} more "
            f"refused at once, HTTP 429), never read; the server's memory after each quarter and a minute later: "
            f"{' → '.join(readings)} MiB")  # fmt: skip


def request_flood(url: str, count: int) -> str:
    """``count`` /generate requests at once from one visitor, by plain HTTP."""
    body = {"data": ["ROMEO:", "lstm", 512, 0.8, 2000, 0, 1.0, 1]}
    answers = [httpx.post(f"{url}gradio_api/call/generate", json=body, headers={"X-Forwarded-For": "198.51.100.9"},
                          timeout=60).status_code for _ in range(count)]  # fmt: skip
    time.sleep(20)
    return f"{answers.count(200)} taken, {answers.count(429)} refused at once (HTTP 429), {answers.count(503)} 'queue full'"


def killed(signal_number: int, temporary: Path, text: str) -> str:
    """Start the app, start a training, end the app with ``signal_number``: the processes left 5 s
    later, and whether a new start removes what the app left."""
    port = free_port()
    process = start_app(port)
    client = visitor(f"http://127.0.0.1:{port}/", "198.51.100.7")
    job = client.submit(text, "rnn", 16, 60, api_name="/train")
    deadline = time.monotonic() + 60
    while not (job.outputs() and job.outputs()[-1]["step"] > 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    parent = process.pid
    process.send_signal(signal_number)
    process.wait(timeout=30)
    time.sleep(WAIT_FOR_ENDS)
    left = [pid for pid in _processes() if f"--parent {parent}" in _cmdline(pid)]
    roots = sorted((temporary / "tmp").glob(f"rnn-demo-*/{parent}-*"))
    again = start_app(free_port())  # a new start removes what a killed app left
    try:
        removed = not any(root.exists() for root in roots)
    finally:
        again.terminate()
        again.wait()
    name = signal.Signals(signal_number).name
    return (f"{name} during a training: {len(left)} processes left after {WAIT_FOR_ENDS:.0f} s; "
            f"its temporary root {'removed by the next start' if removed else 'LEFT'}")  # fmt: skip


def _processes() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ---- the largest answers -------------------------------------------------------------------------


def largest_answers() -> list[tuple[str, str, int]]:
    """(endpoint, the request, JSON bytes of its answer) at the caps, on the shipped models."""
    from rnn_demo.serving import requests, views
    from rnn_demo.serving.poems import check_poem_request
    from rnn_demo.serving.zoo import ModelZoo

    models = Path(__file__).resolve().parents[1] / "models"
    zoo, poems = ModelZoo(models), ModelZoo(models, poems=True)
    text = SHIPPED_TEXT.read_text(encoding="utf-8")
    view_text, poem = text[: requests.MAX_VIEW_CHARS], ("白日依山尽，黄河入海流。\n欲穷千里目，更上一层楼。\n" * 20)[:200]
    rows = [
        ("/explain", f"{requests.MAX_VIEW_CHARS:,} characters, top_k {requests.MAX_ALTERNATIVES}, lstm-h512",
         views.explain_request(zoo, view_text, "lstm", 512, requests.MAX_ALTERNATIVES)),
        ("/neurons", f"{views.MAX_NEURON_CHARS} characters, lstm-h512 (h and c)",
         views.neurons_request(zoo, text[: views.MAX_NEURON_CHARS], "lstm", 512, 0)),
        ("/score", f"{requests.MAX_VIEW_CHARS:,} characters, every model", views.score_request(zoo, view_text)),
        ("/check_poem", "200 characters", check_poem_request(poems, poem)),
        ("/models", "every model", zoo.table()),
    ]  # fmt: skip
    return [(name, request, len(json.dumps(answer, ensure_ascii=False).encode())) for name, request, answer in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests in each attack")
    args = parser.parse_args(argv)
    flood, line, bad, models, upload_count, unread = (10, 6, 10, 4, 15, 20) if args.quick else (40, 6, 40, 5, 300, 200)

    shipped = SHIPPED_TEXT.read_text(encoding="utf-8")
    small, megabyte = shipped[:FLOOD_TEXT_CHARS], shipped[:1_000_000]
    with tempfile.TemporaryDirectory(prefix="rnn-demo-abuse-") as folder:
        temporary = Path(folder)
        (temporary / "tmp").mkdir()
        os.environ["TMPDIR"] = str(temporary / "tmp")  # the app's own root, and gradio's cache below
        os.environ["GRADIO_TEMP_DIR"] = str(temporary / "tmp" / "gradio")
        port = free_port()
        process = start_app(port)
        url = f"http://127.0.0.1:{port}/"
        attacks = [
            (f"{flood} /train at once from one visitor ({FLOOD_TEXT_CHARS:,} characters, rnn hidden 16, 5 s)",
             lambda: training_flood(url, small, flood)),
            (f"{line} visitors' /train at once", lambda: full_line(url, small, line)),
            (f"{bad} /train with hidden_size 1024", lambda: bad_trainings(url, small, bad)),
            ("/train of 1 MB, 2x256 LSTM, 20 s", lambda: wall_budget(url, megabyte)),
            (f"{models} /train from one visitor, one after another, after another visitor's one",
             lambda: many_models(url, small, models)),
            (f"{upload_count} uploads from one visitor", lambda: uploads(url, upload_count)),
            (f"{flood} /generate of 2,000 characters at once from one visitor", lambda: request_flood(url, flood)),
            (f"{unread} /neurons answers nobody reads", lambda: unread_answers(url, unread, process.pid)),
        ]  # fmt: skip
        rows = []
        try:
            warm = visitor(url, OTHER_VISITOR)
            warm.predict(*GENERATE, 0, api_name="/generate")  # the model read, the engine warm
            warm.predict("ROMEO:", "lstm", 512, 0, api_name="/neurons")  # torch and the largest model loaded
            for sent, attack in attacks:
                disk, rss = disk_mib(temporary), server_rss_kib(process.pid) / 1024
                with OtherVisitor(url) as other:
                    got = attack()
                rows.append((sent, got, other.summary(), disk, disk_mib(temporary), rss,
                             server_rss_kib(process.pid) / 1024))  # fmt: skip
        finally:
            process.terminate()
            process.wait()
        kills = [killed(number, temporary, small) for number in (signal.SIGKILL, signal.SIGTERM)]

    print(f"python app.py on loopback, {os.cpu_count()} CPUs; another visitor asks /generate "
          f"(lstm-h256, {GENERATE[4]} characters) one request after another during each attack")
    print()
    print("| attack | what the attacker got | the other visitor meanwhile | disk before → after | memory before → after |")
    print("|---|---|---|---:|---:|")
    for sent, got, other, disk_before, disk_after, rss_before, rss_after in rows:
        print(f"| {sent} | {got} | {other} | {disk_before:.1f} → {disk_after:.1f} MiB "
              f"| {rss_before:.0f} → {rss_after:.0f} MiB |")  # fmt: skip
    for line_ in kills:
        print(f"| the app killed | {line_} | - | - | - |")
    print()
    print("The largest answers, at the caps (JSON, UTF-8):")
    print()
    print("| endpoint | request | answer |")
    print("|---|---|---:|")
    for name, request, size in largest_answers():
        print(f"| {name} | {request} | {size / 1e6:.2f} MB |")


if __name__ == "__main__":
    main()
