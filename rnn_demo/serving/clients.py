"""Who a request comes from: the visitor's address and browser session, for the caps that are per
visitor (one training each, their own trained models, their uploads).

The address is the one the server sees; behind a Space's proxy the visitor's is the first entry of
``X-Forwarded-For``, which the proxy sets. A server reached directly (no proxy) takes that header
as the client sends it, so there a visitor can claim another address: the caps per visitor then
hold per claimed address, and the server-wide caps still hold.
"""

from __future__ import annotations

from dataclasses import dataclass


def visitor_address(forwarded_for: str | None, host: str | None) -> str:
    """The visitor's address: the first entry of ``X-Forwarded-For`` when there is one, else the
    connection's ``host``."""
    forwarded = (forwarded_for or "").split(",")[0].strip()
    return forwarded or host or "unknown"


@dataclass(frozen=True)
class Client:
    """Who asks: ``address`` (:func:`visitor_address`) and ``session``, the browser session (a
    ``gradio_client`` has one per ``Client``), None when unknown."""

    address: str
    session: str | None = None

    @classmethod
    def of(cls, request) -> Client:
        """The client of a ``gr.Request`` (None, for a call from Python, is the local client)."""
        if request is None:
            return LOCAL
        host = request.client.host if request.client is not None else None
        return cls(visitor_address(request.headers.get("x-forwarded-for"), host), request.session_hash or None)

    def is_also(self, other: Client) -> bool:
        """The same visitor: the same address, or the same browser session."""
        return self.address == other.address or (self.session is not None and self.session == other.session)


LOCAL = Client("local")
