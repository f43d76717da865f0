"""Time from ``python app.py`` to a page that answers, against a bare Gradio app, side by side.

    python -m benchmarks.startup            # 3 runs of each, the median reported
    python -m benchmarks.startup --quick    # 1 run of each

The baseline imports gradio and launches an empty ``gr.Blocks``; both are timed from process
start until ``GET /`` answers 200 on loopback. Offline switches are set for both.

Then (not with --quick) what the app's warm-up does after the page is up, in the generation
process: ``rnn_demo.generation.kernels.warm_up()`` in a fresh interpreter, once with an empty numba cache
(what the first start on a machine pays: compiling) and once more with the cache that left
(every later start).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=whole_number(1, 20), default=3, help="runs of each (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="one run of each")
    args = parser.parse_args(argv)
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
