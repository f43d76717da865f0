"""The server's lifecycle: the warm-up after the page is served, and the limits set by whoever runs
it (never by a request).
"""

from __future__ import annotations

from rnn_demo.model.checkpoint import CheckpointError
from rnn_demo.serving.requests import initial_model
from rnn_demo.serving.zoo import ModelZoo

# Generations running at once and waiting at most. The running ones are stepped together by one
# worker (rnn_demo.serving.worker), so many cost little more than one; each holds one of gradio's
# 40 worker threads while it waits for its characters.
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
# Gradio recomputes a summary of its recent events for its monitoring page (a pandas DataFrame of
# up to 10,000 of them) each time a request ends, by default: milliseconds of the server's CPU
# per request, more as the events recorded grow. Here, once every this many events instead;
# $GRADIO_ANALYTICS_CACHE_FREQUENCY, when set, wins.
ANALYTICS_SUMMARY_EVERY = 1_000


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
