"""Starting the generation process (``python -m rnn_demo.serving.generation_process``), with nothing
imported but the standard library (and ``rnn_demo.subprocesses``, which imports no more).

``python app.py`` starts one before it imports gradio (:func:`start_early`), so that the process
imports torch and the generation code on another core while the server imports gradio: the first
request then waits for neither (``python -m benchmarks.startup --cold`` times it). The process gets
its settings in its first message, from the scheduler that takes it (:func:`take_early`), so the
one started early serves whatever scheduler the app makes.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

from rnn_demo import subprocesses

_lock = threading.Lock()
_early: tuple[subprocess.Popen, socket.socket] | None = None


def spawn() -> tuple[subprocess.Popen, socket.socket]:
    """A new generation process and this end of its socket. Raises OSError when it cannot start."""
    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "rnn_demo.serving.generation_process", "--fd", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=subprocesses.environment(),
            stdin=subprocess.DEVNULL,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return process, ours


def start_early() -> None:
    """Start a generation process now, for the first scheduler to take (a no-op if one waits, or
    if it cannot start: the scheduler then starts its own, and says why if that fails too)."""
    global _early
    with _lock:
        if _early is None:
            try:
                _early = spawn()
            except OSError:
                pass


def take_early() -> tuple[subprocess.Popen, socket.socket] | None:
    """The process :func:`start_early` started, if it is still running (once); else None."""
    global _early
    with _lock:
        early, _early = _early, None
    if early is not None and early[0].poll() is not None:  # it ended meanwhile
        early[1].close()
        return None
    return early
