"""Caps per visitor, in front of Gradio's routes: ASGI middlewares of the web server (``app.py``'s
``launch_options``). A request beyond a cap is refused at once with HTTP 429 and a sentence.

- :class:`PendingCap`: a visitor has at most ``per_visitor`` requests waiting or running in Gradio's
  queue (every endpoint together). The queue holds ``MAX_QUEUE_SIZE`` waiting jobs for everyone, so
  without it one visitor's flood of requests fills it and every other visitor is told "Queue is
  full". It counts the visitor's events in Gradio's own queue when a request joins it.
- :class:`UploadCap`: ``POST /gradio_api/upload`` (the only upload the page has is the Train tab's
  text file). Gradio keeps every uploaded file in its cache until ``delete_cache`` removes it,
  ``CACHE_SECONDS`` later (``app.py``), so the uploads of that window are what the disk holds: at
  most ``per_visitor`` of them from one visitor and ``in_all`` from everyone, each at most
  ``max_file_size`` (``launch``).

Visitors are told apart as :mod:`rnn_demo.serving.clients` says.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from rnn_demo.serving.clients import visitor_address

API_PREFIX = "/gradio_api"
UPLOAD_PATH = API_PREFIX + "/upload"
JOIN_PATHS = (API_PREFIX + "/queue/join", API_PREFIX + "/call/")  # the page's, and the plain HTTP API's


def _visitor_of_scope(scope) -> str:
    forwarded = next((value for key, value in scope["headers"] if key == b"x-forwarded-for"), b"")
    host = scope["client"][0] if scope.get("client") else None
    return visitor_address(forwarded.decode("latin-1"), host)


def _visitor_of_event(event) -> str:
    request = event.request
    host = request.client.host if getattr(request, "client", None) is not None else None
    return visitor_address(request.headers.get("x-forwarded-for"), host)


async def _refuse(send, text: str) -> None:
    body = text.encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class PendingCap:
    """At most ``per_visitor`` requests of one visitor waiting or running in Gradio's queue."""

    def __init__(self, app, per_visitor: int):
        self.app = app
        self.per_visitor = per_visitor

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith(JOIN_PATHS):
            blocks = scope["app"].get_blocks() if "app" in scope else None
            queue = getattr(blocks, "_queue", None)
            if queue is not None:
                visitor = _visitor_of_scope(scope)
                events = list(queue.event_ids_to_events.values())
                pending = sum(_visitor_of_event(event) == visitor for event in events)
                if pending >= self.per_visitor:
                    await _refuse(
                        send,
                        f"You have {pending} requests waiting or running, the most one visitor may: "
                        "let them end, then ask again.",
                    )
                    return
        await self.app(scope, receive, send)


class UploadCap:
    """At most ``per_visitor`` uploads per visitor and ``in_all`` in all, in any ``window`` seconds."""

    def __init__(self, app, per_visitor: int, in_all: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.per_visitor, self.in_all, self.window = per_visitor, in_all, window
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: collections.deque[tuple[float, str]] = collections.deque()  # (time, visitor), oldest first

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/") == UPLOAD_PATH:
            refusal = self.admit(_visitor_of_scope(scope))
            if refusal:
                await _refuse(send, refusal)
                return
        await self.app(scope, receive, send)

    def admit(self, visitor: str) -> str | None:
        """Count one upload of ``visitor``'s; or, when it is one too many, the sentence that refuses it."""
        with self._lock:
            now = self._clock()
            while self._recent and self._recent[0][0] <= now - self.window:
                self._recent.popleft()
            minutes = self.window / 60
            if sum(who == visitor for _, who in self._recent) >= self.per_visitor:
                return f"You have uploaded {self.per_visitor} files in the last {minutes:g} minutes, the most one visitor may: try again later."
            if len(self._recent) >= self.in_all:
                return f"The server has taken {self.in_all} uploads in the last {minutes:g} minutes, the most it takes: try again later."
            self._recent.append((now, visitor))
            return None
