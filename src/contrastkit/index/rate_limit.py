"""An ASGI middleware that limits each client address to a number of requests per second (a token bucket)."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from contrastkit.index.request_error import send_error

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

MAX_CLIENTS = 10_000  # buckets kept before the full (idle) ones are forgotten


class RateLimit:
    """At most ``rate`` requests per second per client IP address on average, in bursts of up to ``2 * rate``
    (a token bucket: it holds ``2 * rate`` tokens, refills at ``rate`` per second, each request takes one). A request
    finding the bucket empty gets 429, ``{"error": ...}`` and ``Retry-After`` (whole seconds until a token is
    back). Every path counts, thumbnails included: the page asks for one per result, hence the burst of twice the
    rate. Behind a reverse proxy all clients share the proxy's address.

    Args:
        app: the ASGI application behind it.
        rate: requests per second per client (> 0).
        clock: seconds, monotonic (a test passes a fake one).
    """

    def __init__(self, app: App, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"the rate limit must be > 0 requests per second, got {rate}")
        self.app = app
        self.rate = float(rate)
        self.capacity = max(1.0, 2 * self.rate)
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when they were counted)

    def take(self, client: str) -> float:
        """Take a token from ``client``'s bucket: 0.0 when it had one, else the seconds until it will."""
        now = self.clock()
        tokens, then = self.buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.rate)
        if len(self.buckets) >= MAX_CLIENTS and client not in self.buckets:
            self._forget_idle(now)
        if tokens < 1.0:
            self.buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self.buckets[client] = (tokens - 1.0, now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled (their clients are as good as new)."""
        full = [c for c, (t, then) in self.buckets.items() if t + (now - then) * self.rate >= self.capacity]
        for client in full:
            del self.buckets[client]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.take(client)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            message = f"too many requests: at most {self.rate:g} per second from one client; retry in {seconds} s"
            await send_error(send, 429, message, [("Retry-After", str(seconds))])
            return
        await self.app(scope, receive, send)
