"""The app's end: every child process it starts ends with it (SIGINT, SIGTERM or SIGKILL), and its
temporary files go, when it exits or, after a SIGKILL, at the next start.

The children are started by rnn_demo.subprocesses (tied to their parent); the temporary roots are
rnn_demo.serving.lifecycle's. The last tests run ``python app.py`` in a process of its own, start a
training through the API and end the app with each signal.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, free_port, wait_until

from rnn_demo import subprocesses
from rnn_demo.serving import lifecycle

CHILD_GRACE_SECONDS = 5  # a child ends at most this long after its parent


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, ended but not yet reaped by its new parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def niceness(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[16])  # the stat file's field 19


def training_processes(marker: str) -> list[int]:
    """The pids of the training processes whose command line names ``marker`` (the app's temporary folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
        except OSError:
            continue
        if "rnn_demo.cli.train" in command and marker in command and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


# ---- children tied to their parent ----------------------------------------------------------------

PARENT = """
import subprocess, sys, threading, time
from rnn_demo import subprocesses

children = []


def ask():
    # `python -m code -q` reads its standard input, a pipe that nobody writes to: it waits until ended.
    children.append(subprocesses.start("code", ["-q"], niceness=3, stdin=sys.stdin, stdout=subprocess.DEVNULL))
    time.sleep(2)  # the child is tied to its parent by now: a child forked by this thread would end with it


asking = threading.Thread(target=ask)
asking.start()
asking.join()  # the thread that asked for the child has ended: the child must not end with it
print(children[0].pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_child_outlives_the_thread_that_asked_for_it_runs_nicer_and_ends_with_its_process():
    reader, writer = os.pipe()
    parent = subprocess.Popen([sys.executable, "-c", PARENT],
                              cwd=REPO_ROOT, env=subprocesses.environment(), stdin=reader, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    os.close(reader)
    try:
        child = int(parent.stdout.readline())
        time.sleep(1)
        assert alive(child)
        assert niceness(child) == min(niceness(parent.pid) + 3, 19)
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not alive(child), CHILD_GRACE_SECONDS)
    finally:
        os.close(writer)
        parent.kill()
        parent.wait()


def test_a_child_whose_parent_has_already_ended_ends_before_running_anything():
    # --parent names a process that is not this child's parent: the one it names is gone.
    started = time.monotonic()
    ended = subprocess.run(
        [sys.executable, "-m", "rnn_demo.subprocesses", "--parent", "1", "no.such.module"],
        cwd=REPO_ROOT, env=subprocesses.environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ended.returncode == -signal.SIGKILL and "no.such.module" not in ended.stderr
    assert time.monotonic() - started < 30
