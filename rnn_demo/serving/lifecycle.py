"""The server's lifecycle: the warm-up after the page is served, the limits set by whoever runs it
(never by a request), its end on SIGTERM, and its folder of temporary files.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from rnn_demo.model.checkpoint import CheckpointError
from rnn_demo.serving.requests import initial_model
from rnn_demo.serving.zoo import ModelZoo

# Generations running at once and waiting at most. The running ones are stepped together by one
# worker (rnn_demo.serving.worker), so many cost little more than one; each holds one of gradio's
# 40 worker threads while it waits for its characters.
CONCURRENCY_LIMIT = 32
MAX_QUEUE_SIZE = 32
# Requests of one visitor waiting or running at once, every endpoint together (the page's own
# events included): beyond it one is refused at once (rnn_demo.serving.visitor_caps), so that no
# visitor's flood fills the queue's MAX_QUEUE_SIZE places that everyone shares.
PENDING_PER_VISITOR = 8
# Gradio keeps a copy of the page's configuration (about 0.2 MB here) for each of this many recent
# sessions (its default: 10,000), and every API call is a new session: the cap bounds the server's
# memory under traffic (``python -m benchmarks.load --parts 5`` reads it; docs/design.md, "Memory").
STATE_SESSION_CAPACITY = 100
# glibc malloc arenas when served by app.main() (glibc's default: 8 per core). Each arena keeps
# what its threads freed, and Gradio's many worker threads spread over them (docs/design.md,
# "Memory"; rnn_demo/serving/allocator.py). $MALLOC_ARENA_MAX, when set, wins.
MALLOC_ARENAS = 2
# Gradio recomputes a summary of its recent events for its monitoring page (a pandas DataFrame of
# up to 10,000 of them) each time a request ends, by default: milliseconds of the server's CPU
# per request, more as the events recorded grow. Here, once every this many events instead;
# $GRADIO_ANALYTICS_CACHE_FREQUENCY, when set, wins.
ANALYTICS_SUMMARY_EVERY = 1_000
# Gradio's file cache (uploads, and the trained models' zips the page offers): every CACHE_CHECK_SECONDS,
# the files older than CACHE_SECONDS are deleted (``gr.Blocks(delete_cache=...)``; without it nothing
# there is ever deleted). A zip stays downloadable as long as its model is kept after its last use.
CACHE_CHECK_SECONDS = 600
CACHE_SECONDS = 3600
# Uploads kept in that cache at most: per visitor, and from everyone (rnn_demo.serving.visitor_caps).
UPLOADS_PER_VISITOR = 10
UPLOADS_IN_ALL = 200


def warm_up(zoo: ModelZoo) -> None:
    """Read the engine weights of the page's preselected model
    (:func:`~rnn_demo.serving.requests.initial_model`), so that the first request does not wait for
    them. Generation needs no torch; the views import it on their first use."""
    first = initial_model(zoo)
    if first is not None:
        try:
            zoo.weights(first.cell, first.hidden_size)
        except CheckpointError:
            pass  # the page already lists the zoo's problems; a request for it says why


# ---- the end ----------------------------------------------------------------------------------


def end_on_signals(first: Callable[[], None]) -> None:
    """Make Ctrl-C (SIGINT) and SIGTERM (``kill``, a container's stop) end the server alike: ``first()``
    (the app ends its trainings there, so that no training's stream keeps the closing server waiting
    for it), then a KeyboardInterrupt in the main thread, which ``demo.block_thread()`` answers by
    closing the server; the exit handlers then remove the temporary files. Python's own SIGTERM ends
    the process at once, without them. Call it from the main thread."""

    def interrupt(signum, frame):
        first()
        raise KeyboardInterrupt

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, interrupt)


# ---- temporary files --------------------------------------------------------------------------

# A temporary root's name: its process's id and start time, then mkdtemp's random letters.
_ROOT_NAME = re.compile(r"(?P<pid>\d+)-(?P<start>\d+)-[a-z0-9_]+")


def default_temporary_parent() -> Path:
    """``<tempdir>/rnn-demo-<user id>``: where every server of this user keeps its temporary root."""
    user = f"-{os.getuid()}" if hasattr(os, "getuid") else ""
    return Path(tempfile.gettempdir()) / f"rnn-demo{user}"


def process_identity(pid: int) -> str | None:
    """``"<pid>-<start time>"`` of a running process, None when none runs with that id. The start time
    (clock ticks after boot, from Linux's /proc) tells the process from a later one given the same id;
    where there is no /proc it is 0, and the id alone counts."""
    if not os.path.isdir("/proc/self"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # another user's process: running
        return f"{pid}-0"
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # after the name, which may hold spaces
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, start = fields[0], fields[19]  # the stat file's fields 3 and 22
    return None if state in ("Z", "X") else f"{pid}-{start}"  # a zombie has ended, only not been reaped


def remove_abandoned_roots(parent: Path) -> list[Path]:
    """Delete the temporary roots in ``parent`` whose process has ended (killed with SIGKILL, crashed)
    without removing its own; return them. Another running server's root is left alone."""
    removed = []
    for root in sorted(parent.iterdir()) if parent.is_dir() else []:
        named = _ROOT_NAME.fullmatch(root.name)
        if named and root.is_dir() and process_identity(int(named["pid"])) != f"{named['pid']}-{named['start']}":
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
    return removed


def temporary_root(parent: Path | None = None) -> Path:
    """A new folder for this process's temporary files, in ``parent`` (by default
    :func:`default_temporary_parent`), named after this process (:func:`process_identity`) so that a
    later start can tell whether its owner still runs; the roots of ended processes are removed first.
    Its owner removes it when it ends (``Trainer.close``)."""
    parent = parent or default_temporary_parent()
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_abandoned_roots(parent)
    return Path(tempfile.mkdtemp(prefix=f"{process_identity(os.getpid())}-", dir=parent))
