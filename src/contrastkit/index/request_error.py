"""How ``contrastkit serve`` refuses a request: a status and a one-line ``{"error": "..."}`` body, never a traceback.

:class:`RequestError` is raised inside the endpoints (the application's handler turns it into the response);
:func:`send_error` answers the same way from the ASGI middlewares that refuse a request before any endpoint runs
(body too large, missing token, rate limit).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]


class RequestError(ValueError):
    """A request the service refuses: its HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def send_error(
    send: Send, status: int, message: str, headers: Sequence[tuple[str, str]] = (), close: bool = False
) -> None:
    """Send ``{"error": message}`` with ``status`` on an ASGI ``send``; ``close`` asks the client to close the
    connection (the request body was not read to its end)."""
    body = json.dumps({"error": message}).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode("ascii"))]
    raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
