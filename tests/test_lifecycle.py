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
        cwd=REPO_ROOT, env=subprocesses.environment(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ended.returncode == -signal.SIGKILL and "no.such.module" not in ended.stderr
    assert time.monotonic() - started < 30


# ---- temporary roots -------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_the_next_start_removes_the_roots_of_ended_processes_only(tmp_path):
    ours = lifecycle.process_identity(os.getpid())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        running = lifecycle.process_identity(sleeper.pid)
        pid, start = ours.split("-")
        names = {
            "this process": f"{ours}-abc123",
            "another running server": f"{running}-x_9y",
            "an ended process": f"{sleeper.pid + 1_000_000}-55-zz",  # no process has this id
            "an ended process whose id was given again": f"{pid}-{int(start) - 1}-qq",
            "not a root": "notes",
        }
        for name in names.values():
            (tmp_path / name).mkdir()
            (tmp_path / name / "left.txt").write_text("x")
        new = lifecycle.temporary_root(tmp_path)
        assert new.name.startswith(f"{ours}-") and new.is_dir()
        kept = {path.name for path in tmp_path.iterdir()}
        assert kept == {new.name, names["this process"], names["another running server"], names["not a root"]}
        sleeper.kill()
        sleeper.wait()
        assert lifecycle.remove_abandoned_roots(tmp_path) == [tmp_path / names["another running server"]]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_trainer_keeps_its_files_under_a_root_of_this_processs_own():
    from rnn_demo.serving.training_jobs import Trainer

    trainer = Trainer()
    try:
        assert trainer.root.parent == lifecycle.default_temporary_parent()
        assert trainer.root.name.startswith(f"{lifecycle.process_identity(os.getpid())}-")
    finally:
        trainer.close(remove_root=True)
    assert not trainer.root.exists()


# ---- the app, ended during a training --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("app-process")  # one app process at a time: each takes a core while it starts
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("ending", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_the_app_ended_during_a_training_leaves_no_process_and_no_files(ending, app_models, tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    port = free_port()
    environment = {**subprocesses.environment(), "RNN_DEMO_MODELS": str(app_models), "TMPDIR": str(temporary),
                   "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO_ROOT, env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        client = _connect(f"http://127.0.0.1:{port}/", server)
        text = (REPO_ROOT / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:20_000]
        client.submit(text, "lstm", 32, 60, api_name="/train")
        assert wait_until(lambda: training_processes(str(temporary)), 60), "no training started"
        [training] = training_processes(str(temporary))
        [root] = (temporary / lifecycle.default_temporary_parent().name).iterdir()
        assert root.name.startswith(f"{lifecycle.process_identity(server.pid)}-")

        server.send_signal(ending)
        server.wait(timeout=60)
        ended = time.monotonic()
        assert wait_until(lambda: not alive(training), CHILD_GRACE_SECONDS), "the training outlived the app"
        assert time.monotonic() - ended < CHILD_GRACE_SECONDS
        assert not training_processes(str(temporary))
        if ending == signal.SIGKILL:  # nothing ran at its end: the next start removes its files
            assert root.exists()
            lifecycle.remove_abandoned_roots(root.parent)
        assert not root.exists()
    finally:
        server.kill()
        server.wait()


def _connect(url: str, server: subprocess.Popen):
    from gradio_client import Client

    deadline = time.monotonic() + 120
    while True:
        try:
            return Client(url, verbose=False, analytics_enabled=False)
        except Exception:  # not up yet
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
