"""The server's lifecycle: its scheduler made on first use, the warm-up after the page is served,
and the limits set by whoever runs it (never by a request).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from rnn_demo.model.checkpoint import CheckpointError
from rnn_demo.serving.requests import initial_model
from rnn_demo.serving.zoo import ModelZoo

if TYPE_CHECKING:
    from rnn_demo.serving.streaming import Scheduler

# Generations running at once and waiting at most. The running ones of each model are stepped
# together in a process of their own (rnn_demo.serving.generation_process), so many cost little
# more than one; each holds one of gradio's 40 worker threads while it waits for its characters.
CONCURRENCY_LIMIT = 32
MAX_QUEUE_SIZE = 32
# Gradio keeps a copy of the page's configuration (about 0.2 MB here) for each of this many recent
# sessions (its default: 10,000), and every API call is a new session: the cap bounds the server's
# memory under traffic (``python -m benchmarks.load --parts 5`` reads it; docs/design.md, "Memory").
STATE_SESSION_CAPACITY = 100
# glibc malloc arenas when served by app.main() (glibc's default: 8 per core). Each arena keeps
# what its threads freed, and Gradio's many worker threads spread over them (docs/design.md,
# "Memory"; rnn_demo/serving/allocator.py). $MALLOC_ARENA_MAX, when set, wins.
MALLOC_ARENAS = 2
# torch threads of the generation process: one step of these small models is too short to share
# between cores (``OMP_NUM_THREADS=1 python -m benchmarks.sampling_speed`` measures one thread).
TORCH_THREADS = 1
# Gradio recomputes a summary of its recent events for its monitoring page (a pandas DataFrame of
# up to 10,000 of them) each time a request ends, by default: milliseconds of the server's CPU
# per request, more as the events recorded grow. Here, once every this many events instead;
# $GRADIO_ANALYTICS_CACHE_FREQUENCY, when set, wins.
ANALYTICS_SUMMARY_EVERY = 1_000


class LazyScheduler:
    """The demo's scheduler, made on first use (importing one imports torch): the one given, or a
    ProcessScheduler, which steps the generations in a process of its own."""

    def __init__(self, scheduler: Scheduler | None = None):
        self._scheduler = scheduler
        self._lock = threading.Lock()

    def get(self) -> Scheduler:
        with self._lock:
            if self._scheduler is None:
                from rnn_demo.serving.generation_process import ProcessScheduler

                self._scheduler = ProcessScheduler(torch_threads=TORCH_THREADS)
            return self._scheduler


def warm_up(zoo: ModelZoo, scheduler: LazyScheduler) -> None:
    """Import torch and the generation code, start the scheduler (the generation process) and load
    the page's preselected model (:func:`~rnn_demo.serving.requests.initial_model`) into both, so
    that the first request does not pay for them. Requests that come earlier wait for the same
    imports."""
    import torch

    torch.set_num_threads(TORCH_THREADS)
    scheduler = scheduler.get()
    first = initial_model(zoo)
    if first is not None:
        try:
            scheduler.preload(zoo.load(first.cell, first.hidden_size))
        except CheckpointError:
            pass  # the page already lists the zoo's problems; a request for it says why
