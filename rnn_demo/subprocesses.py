"""The project's own child processes (the Train tab's training runs): started so that they end with
the process that started them, however it ends, and run at a lower CPU priority. Standard library only.

:func:`start` runs ``python -m rnn_demo.subprocesses --parent PID --niceness N MODULE ARGS...``: the
child (:func:`main`, here) first ties itself to its parent, lowers its priority, then runs ``python -m
MODULE ARGS...`` in the same process. Tied to the parent means:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the child when the parent ends,
  SIGKILL included. The kernel counts the *thread* that forked the child as its parent, so every child
  is forked by one launcher thread that lives as long as the process (:class:`_Launcher`), never by a
  server's worker thread, which may end while its child runs;
- everywhere, a thread of the child's own that ends it once ``os.getppid()`` is no longer the parent
  (the parent ended before the prctl took effect, or a system without it).

The environment for them is :func:`environment`: this one, with the folder that holds ``rnn_demo/``
first on the path, so that they import this copy of the package whatever the working directory.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import os
import queue
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])  # the folder holding rnn_demo/
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_SECONDS = 0.5  # how often a child checks that its parent is still there


def environment() -> dict[str, str]:
    """``os.environ`` with :data:`PACKAGE_PARENT` put first on ``PYTHONPATH``."""
    variables = dict(os.environ)
    variables["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_PARENT, variables.get("PYTHONPATH")]))
    return variables


# ---- the parent's side ---------------------------------------------------------------------------


class _Launcher:
    """One daemon thread that runs every start of a child, and lives as long as the process."""

    _lock = threading.Lock()
    _shared: _Launcher | None = None

    def __init__(self):
        self.pid = os.getpid()
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="rnn-demo-launcher", daemon=True).start()

    @classmethod
    def shared(cls) -> _Launcher:
        """The process's launcher, started on first use (again in a forked copy of the process, which
        has the object but not its thread)."""
        with cls._lock:
            if cls._shared is None or cls._shared.pid != os.getpid():
                cls._shared = cls()
            return cls._shared

    def _serve(self) -> None:
        while True:
            start, result = self._requests.get()
            if result.set_running_or_notify_cancel():
                try:
                    result.set_result(start())
                except BaseException as error:  # noqa: BLE001 - handed to the caller, raised there
                    result.set_exception(error)

    def run(self, start: Callable[[], subprocess.Popen]) -> subprocess.Popen:
        result: concurrent.futures.Future = concurrent.futures.Future()
        self._requests.put((start, result))
        return result.result()


def start(module: str, arguments: list[str], niceness: int = 0, **popen_options) -> subprocess.Popen:
    """Start ``python -m module arguments...`` in a child process that ends with this one (SIGINT,
    SIGTERM or SIGKILL alike) and runs ``niceness`` steps below this process's CPU priority.
    ``popen_options`` go to :class:`subprocess.Popen` (``env``, ``cwd``, ``stdout``, ...)."""
    command = [sys.executable, "-m", __name__, "--parent", str(os.getpid()), "--niceness", str(niceness),
               module, *arguments]  # fmt: skip
    return _Launcher.shared().run(lambda: subprocess.Popen(command, **popen_options))


# ---- the child's side ----------------------------------------------------------------------------


def _end_with(parent: int) -> None:
    """End this process when ``parent`` is no longer its parent process."""
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # no prctl here: the thread below does the work
    if os.getppid() != parent:  # it ended before the prctl: nothing would signal the end any more
        os.kill(os.getpid(), signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's signal would: nothing to save for a gone parent

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m rnn_demo.subprocesses",
        description="Run python -m MODULE ARGS... tied to a parent process (for rnn_demo's own child processes).",
    )
    parser.add_argument("--parent", type=int, required=True, help="the process id this one ends with")
    parser.add_argument("--niceness", type=int, default=0, help="CPU priority steps below the parent's")
    parser.add_argument("module", help="the module to run as __main__")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="its command-line arguments")
    args = parser.parse_args(argv)
    _end_with(args.parent)
    if args.niceness:
        os.nice(args.niceness)
    sys.argv = [args.module, *args.arguments]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
