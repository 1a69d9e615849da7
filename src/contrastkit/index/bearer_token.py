"""An ASGI middleware that lets a request through only with the service's bearer token."""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from typing import Any

from contrastkit.index.request_error import send_error

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]{8,}")  # URL- and cookie-safe (secrets.token_urlsafe gives these)
COOKIE = "contrastkit_token"  # the page sets it for the thumbnails, which <img> tags fetch without headers
OPEN_PATHS = {"/"}  # the page itself holds no data; it asks for the token
COOKIE_PATHS = {"/thumbnail"}  # GET only: images shown by the page


def check_token(token: str) -> str:
    """``token`` when it is usable as a bearer token (8 or more of ``A-Z a-z 0-9 . _ ~ + / = -``), else a one-line
    error saying how to make one."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise ValueError(
            "the token must be 8 or more characters of A-Z a-z 0-9 . _ ~ + / = - (make one with: python -c "
            "'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


class BearerToken:
    """Refuse every request without ``Authorization: Bearer TOKEN`` with 401 and ``{"error": ...}``.

    ``GET /`` (the page: static, no data) is open. ``GET /thumbnail`` also accepts the token from the
    ``contrastkit_token`` cookie, which the page sets (``SameSite=Strict``, path ``/thumbnail``): images in ``<img>``
    tags are fetched without headers. The token is never taken from the URL (it would end up in logs and history).
    Tokens are compared in constant time (``hmac.compare_digest``).

    Args:
        app: the ASGI application behind it.
        token: the token clients must send (see :func:`check_token`).
    """

    def __init__(self, app: App, token: str) -> None:
        self.app = app
        self.token = check_token(token).encode("ascii")

    def _presented(self, scope: dict[str, Any]) -> bytes | None:
        headers = dict(scope.get("headers", ()))
        scheme, _, value = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer" and value:
            return value.strip()
        if scope["path"] in COOKIE_PATHS and scope["method"] == "GET":
            for part in headers.get(b"cookie", b"").split(b";"):
                name, _, value = part.strip().partition(b"=")
                if name == COOKIE.encode("ascii"):
                    return value.strip(b'"')
        return None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["path"] in OPEN_PATHS and scope["method"] in ("GET", "HEAD")):
            await self.app(scope, receive, send)
            return
        presented = self._presented(scope)
        if presented is None:
            await send_error(send, 401, "this service needs a token: send Authorization: Bearer TOKEN",
                             [("WWW-Authenticate", "Bearer")])  # fmt: skip
            return
        if not hmac.compare_digest(presented, self.token):
            await send_error(send, 401, "wrong token", [("WWW-Authenticate", 'Bearer error="invalid_token"')])
            return
        await self.app(scope, receive, send)
