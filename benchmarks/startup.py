"""Time from ``python app.py`` to a page that answers, against a bare Gradio app, side by side.

    python -m benchmarks.startup            # 3 runs of each, the median reported
    python -m benchmarks.startup --quick    # 1 run of each
    python -m benchmarks.startup --cold     # a fresh Space: an empty numba cache, every shipped model

The baseline imports gradio and launches an empty ``gr.Blocks``; both are timed from process
start until ``GET /`` answers 200 on loopback. Offline switches are set for both.

Then (not with --quick) what the app's warm-up does after the page is up, in the generation
process: ``rnn_demo.generation.kernels.warm_up()`` in a fresh interpreter, once with an empty numba cache
(what the first start on a machine pays: compiling) and once more with the cache that left
(every later start).

``--cold`` starts ``python app.py`` as a fresh Space container does, with an empty numba cache
(``$NUMBA_CACHE_DIR`` a new folder), once per shipped model: as soon as the page answers, one
client asks that model for 200 characters (``/generate``, streamed). It prints when the page
answered, when the first characters came (counted from the page, the client's connection included:
the reference engine serves while the kernels compile) and, for the first model, when the
generation process said the compiled engine took over (its log line).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.server import OFFLINE, PROJECT_ROOT, free_port, page_answers
from rnn_demo.cli.arguments import whole_number
from rnn_demo.generation import engines

BARE_APP = (
    "import sys, gradio as gr\n"
    "with gr.Blocks() as demo:\n"
    "    gr.Markdown('empty')\n"
    "demo.launch(server_name='127.0.0.1', server_port=int(sys.argv[1]))\n"
)


def seconds_until_ready(command: list[str], port: int, timeout: float = 120.0) -> float:
    environment = dict(os.environ, **OFFLINE)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited with {process.returncode} before serving")
            if page_answers(port):
                return time.perf_counter() - started
            time.sleep(0.05)
        raise RuntimeError(f"{command} did not serve within {timeout} s")
    finally:
        process.terminate()
        process.wait()


WARM_UP = (
    "import time\n"
    "from rnn_demo.generation import kernels\n"
    "started = time.perf_counter()\n"
    "kernels.warm_up()\n"
    "print(time.perf_counter() - started)\n"
)


def kernel_warm_up_seconds(cache_dir: str) -> float:
    """Seconds ``kernels.warm_up()`` takes in a fresh interpreter with numba's cache in ``cache_dir``."""
    environment = dict(os.environ, **OFFLINE, NUMBA_CACHE_DIR=cache_dir)
    result = subprocess.run([sys.executable, "-c", WARM_UP], cwd=PROJECT_ROOT, env=environment,
                            capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


READY_LINE = engines.READY_MESSAGE  # what the generation process logs at the switch-over
NEVER_LINE = engines.NOT_COMING  # ... or when the kernels are not coming


def cold_start(model: str, wait_for_kernels: bool, timeout: float = 300.0) -> dict:
    """One cold start of ``python app.py`` (see the module's doc) asking ``model`` ("lstm-h512")
    for its first characters: seconds from process start to the page, from the page to the first
    characters and (``wait_for_kernels``) from the page to the compiled engine's log line."""
    from gradio_client import Client

    cell, hidden_size = model.split("-h")
    port = free_port()
    with tempfile.TemporaryDirectory() as cache_dir:
        environment = dict(os.environ, **OFFLINE, OMP_NUM_THREADS="1", NUMBA_CACHE_DIR=cache_dir)
        environment.pop("RNN_DEMO_ENGINE", None)
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=PROJECT_ROOT, env=environment, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        ready = threading.Event()
        ready_at: list[float] = []
        never: list[str] = []

        def read_log():
            for line in process.stderr:
                if READY_LINE in line and not ready.is_set():
                    ready_at.append(time.perf_counter())
                    ready.set()
                elif NEVER_LINE in line and not ready.is_set():
                    never.append(line.strip())
                    ready.set()

        threading.Thread(target=read_log, daemon=True).start()
        try:
            while not page_answers(port):
                if process.poll() is not None or time.perf_counter() - started > timeout:
                    raise RuntimeError(f"python app.py did not serve (exit code {process.poll()})")
                time.sleep(0.02)
            page = time.perf_counter()
            client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False, ssl_verify=False)
            job = client.submit("ROMEO:", cell, int(hidden_size), 0.8, 200, 0, 1.0, 1, api_name="/generate")
            first = None
            for text in job:
                if first is None and len(text) > len("ROMEO:"):
                    first = time.perf_counter()
            if first is None:
                raise RuntimeError(f"{model} answered no characters")
            result = dict(page=page - started, first=first - page)
            if wait_for_kernels:
                if not ready.wait(timeout):
                    raise RuntimeError("the compiled engine did not take over")
                result["kernels"] = ready_at[0] - page if ready_at else None
                result["why not"] = never[0] if never else ""
            return result
        finally:
            process.terminate()
            process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=whole_number(1, 20), default=3, help="runs of each (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="one run of each")
    parser.add_argument("--cold", action="store_true", help="cold starts (an empty numba cache), every shipped model")
    parser.add_argument("--models", default="", help="with --cold: these shipped models only (comma-separated)")
    args = parser.parse_args(argv)
    if args.cold:
        shipped = sorted(p.name for p in (PROJECT_ROOT / "models").iterdir() if (p / "config.json").is_file())
        models = [name for name in args.models.split(",") if name] or shipped
        unknown = sorted(set(models) - set(shipped))
        if unknown:
            parser.error(f"not shipped models: {', '.join(unknown)} (shipped: {', '.join(shipped)})")
        models.sort(key=lambda name: name != "lstm-h512")  # the largest first: it also waits for the kernels
        print("cold starts of python app.py (an empty numba cache each), one request of 200 characters "
              "as the page answers")
        print("| model | page ready | first characters, after the page | compiled engine took over, after the page |")
        print("|---|---:|---:|---:|")
        for index, model in enumerate(models):
            run = cold_start(model, wait_for_kernels=index == 0)
            kernels = f"{run['kernels']:.1f} s" if run.get("kernels") is not None else "-"
            if run.get("why not"):
                kernels = f"never: {run['why not']}"
            print(f"| {model} | {run['page']:.2f} s | {run['first']:.2f} s | {kernels} |", flush=True)
        return
    runs = 1 if args.quick else args.runs
    bare, ours = [], []
    for _ in range(runs):  # interleaved, so a slow moment of the machine hits both
        port = free_port()
        bare.append(seconds_until_ready([sys.executable, "-c", BARE_APP, str(port)], port))
        port = free_port()
        ours.append(seconds_until_ready([sys.executable, "app.py", "--port", str(port)], port))
    print(f"median of {runs}, from process start to GET / answering 200")
    print("| bare gradio (import + empty Blocks) | python app.py | ratio |")
    print("|---:|---:|---:|")
    print(f"| {statistics.median(bare):.2f} s | {statistics.median(ours):.2f} s | {statistics.median(ours) / statistics.median(bare):.2f} |")
    if not args.quick:
        with tempfile.TemporaryDirectory() as cache_dir:
            compiling, cached = kernel_warm_up_seconds(cache_dir), kernel_warm_up_seconds(cache_dir)
        print("\nthe generation kernels in the app's warm-up (kernels.warm_up(), a fresh interpreter)")
        print("| empty numba cache (compiling) | from the cache |\n|---:|---:|")
        print(f"| {compiling:.1f} s | {cached:.2f} s |")


if __name__ == "__main__":
    main()
