"""Answers nobody reads are dropped, so that they cannot fill the server's memory.

Gradio puts every event's messages in its session's queue, where a reader takes them: the page and
``gradio_client`` read at once, and a plain ``POST /gradio_api/call/<name>`` is read by its ``GET``.
An answer never read stays there, for each of the last 2,000 sessions (``pending_messages_per_session``
in ``gradio/queueing.py``), and each plain POST is a session of its own: 200 unread ``/neurons``
answers on the largest model would hold gigabytes (``python -m benchmarks.abuse`` measures them).

So the app's lifespan runs :func:`dropping_unread_answers`: every ``LOOK_SECONDS`` it finds the
sessions whose queue holds messages while none of their events waits or runs (answers not read
yet), and drops those unread for ``UNREAD_SECONDS``, and beyond the ``MAX_UNREAD`` most recent, the
oldest. A reader takes its messages as they arrive, so only answers nobody reads go; the memory
they hold is at most ``MAX_UNREAD`` of the largest answer. It reads Gradio's queue on the server's
own event loop, as Gradio does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextlib import asynccontextmanager

UNREAD_SECONDS = 60.0  # an answer unread this long is dropped
MAX_UNREAD = 16  # unread answers kept at most, the most recent
LOOK_SECONDS = 1.0


def drop_unread(queue, first_seen: dict[str, float], now: float) -> dict[str, float]:
    """One look at Gradio's ``queue``: drop the unread answers too old or too many; return when each
    unread one left was first seen ({session: time}), for the next look."""
    busy = {event.session_hash for event in list(queue.event_ids_to_events.values())}
    unread = {
        session: first_seen.get(session, now)
        for session, messages in list(queue.pending_messages_per_session.items())
        if messages.qsize() and session not in busy
    }
    oldest_first = sorted(unread, key=unread.__getitem__)
    excess = len(oldest_first) - MAX_UNREAD
    for index, session in enumerate(oldest_first):
        if index < excess or now - unread[session] >= UNREAD_SECONDS:
            del queue.pending_messages_per_session[session]
            queue.pending_event_ids_session.pop(session, None)
            del unread[session]
    return unread


async def _look_forever(app) -> None:
    first_seen: dict[str, float] = {}
    while True:
        await asyncio.sleep(LOOK_SECONDS)
        first_seen = drop_unread(app.get_blocks()._queue, first_seen, time.monotonic())


@asynccontextmanager
async def dropping_unread_answers(app):
    """A lifespan for ``launch(app_kwargs={"lifespan": ...})``: drops the unread answers while the
    server runs."""
    task = asyncio.create_task(_look_forever(app))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
