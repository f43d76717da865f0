"""Starting ``python app.py`` for the benchmarks that measure it from outside (loopback only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks import PROJECT_ROOT

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_processes(pid: int) -> list[int]:
    """The child processes of a process (Linux /proc; the app's are its training runs), []
    where unknown."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                found += [int(child) for child in listed.read().split()]
    except OSError:
        return []
    return found


def page_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start_app(
    port: int, models_dir: Path | None = None, timeout: float = 180.0, one_thread: bool = True
) -> subprocess.Popen:
    """``python app.py`` on 127.0.0.1:``port`` (offline; one torch thread unless ``one_thread`` is
    False, which leaves torch its default), returned once its page answers. It serves
    ``models_dir``, or the shipped models when None."""
    environment = dict(os.environ, **OFFLINE)
    if one_thread:
        environment["OMP_NUM_THREADS"] = "1"
    environment.pop("RNN_DEMO_MODELS", None)
    if models_dir is not None:
        environment["RNN_DEMO_MODELS"] = str(models_dir)
    process = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"python app.py exited with {process.returncode} before serving")
        if page_answers(port):
            return process
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"python app.py did not serve within {timeout:.0f} s")
