"""An ASGI middleware that refuses a request body over a byte cap while it streams in, not after it was read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from contrastkit.index.request_error import send_error

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies of more than ``max_bytes`` with 413 and ``{"error": ...}``.

    A ``Content-Length`` over the cap is answered at once, before a byte of the body is read. A body without one
    (``Transfer-Encoding: chunked``) is counted as it arrives: the chunk that takes it past the cap is the last one
    read, the 413 goes out, the application sees the client as gone (``http.disconnect``) and whatever it answers
    after that is dropped. The connection is then closed (the rest of the body is never read).

    Args:
        app: the ASGI application behind it.
        max_bytes: the largest body accepted.
    """

    def __init__(self, app: App, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.app = app
        self.max_bytes = int(max_bytes)

    def _too_large(self, size: str) -> str:
        return f"the request body has {size} bytes; this service takes at most {self.max_bytes}"

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_error(send, 400, "Content-Length is not a whole number", close=True)
                return
            if int(declared) > self.max_bytes:
                await send_error(send, 413, self._too_large(str(int(declared))), close=True)
                return
        received = 0
        refused = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await send_error(send, 413, self._too_large(f"more than {self.max_bytes}"), close=True)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # the 413 went out already: the application's own answer is dropped
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:  # the application's own failure: its handlers (outside this middleware) answer it
                raise
