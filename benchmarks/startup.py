"""Time from ``python app.py`` to a page that answers, against a bare Gradio app, side by side, and
the first characters of a fresh start.

    python -m benchmarks.startup            # 3 runs of each, the median reported
    python -m benchmarks.startup --quick    # 1 run of each
    python -m benchmarks.startup --cold     # a fresh start per shipped model: its first characters

The baseline imports gradio and launches an empty ``gr.Blocks``; both are timed from process
start until ``GET /`` answers 200 on loopback. Offline switches are set for both.

``--cold`` starts ``python app.py`` as a fresh Space container does, once per shipped model: as
soon as the page answers, one client asks that model for 200 characters (``/generate``, streamed).
It prints when the page answered and when the first characters came, counted from the page (the
client's connection and the reading of the model included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from benchmarks import text_model_folders
from benchmarks.server import OFFLINE, PROJECT_ROOT, free_port, page_answers
from rnn_demo.cli.arguments import whole_number

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


def cold_start(model: str, timeout: float = 300.0) -> dict:
    """One cold start of ``python app.py`` asking ``model`` ("lstm-h512") for its first characters:
    seconds from process start to the page, and from the page to the first characters."""
    from gradio_client import Client

    cell, hidden_size = model.split("-h")
    port = free_port()
    environment = dict(os.environ, **OFFLINE)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=PROJECT_ROOT, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
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
        return dict(page=page - started, first=first - page)
    finally:
        process.terminate()
        process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=whole_number(1, 20), default=3, help="runs of each (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="one run of each")
    parser.add_argument("--cold", action="store_true", help="a fresh start per shipped model, and its first characters")
    parser.add_argument("--models", default="", help="with --cold: these shipped models only (comma-separated)")
    args = parser.parse_args(argv)
    if args.cold:
        shipped = sorted(folder.name for folder in text_model_folders(PROJECT_ROOT / "models"))
        models = [name for name in args.models.split(",") if name] or shipped
        unknown = sorted(set(models) - set(shipped))
        if unknown:
            parser.error(f"not shipped models: {', '.join(unknown)} (shipped: {', '.join(shipped)})")
        print("fresh starts of python app.py, one request of 200 characters as the page answers")
        print("| model | page ready | first characters, after the page |")
        print("|---|---:|---:|")
        for model in models:
            run = cold_start(model)
            print(f"| {model} | {run['page']:.2f} s | {run['first']:.2f} s |", flush=True)
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


if __name__ == "__main__":
    main()
