"""BodyLimit on a bare ASGI app: a declared Content-Length over the cap is refused before any byte is read, a body
without one is cut at the chunk that passes the cap, a body under it reaches the app unchanged."""

from __future__ import annotations

import asyncio
import json

from contrastkit.index.body_limit import BodyLimit

CAP = 10_500
CHUNK = b"x" * 1000


def run(headers: list[tuple[bytes, bytes]], chunks: int | None) -> tuple[list[dict], list[dict], int]:
    """Send a POST with ``chunks`` 1000-byte chunks (None: endless) through BodyLimit to an app that reads the whole
    body and answers 200 with its size: the messages sent, those the app saw, and the chunks read from the client."""
    read = 0
    seen: list[dict] = []
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        read += 1
        more = chunks is None or read < chunks
        return {"type": "http.request", "body": CHUNK, "more_body": more}

    async def send(message: dict) -> None:
        sent.append(message)

    async def app(scope, receive, send) -> None:
        size = 0
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.disconnect":
                break
            size += len(message["body"])
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})

    scope = {"type": "http", "method": "POST", "path": "/search", "headers": headers}
    asyncio.run(BodyLimit(app, CAP)(scope, receive, send))
    return sent, seen, read


def test_a_declared_length_over_the_cap_is_refused_before_reading():
    sent, seen, read = run([(b"content-length", b"104857600")], None)
    assert read == 0 and seen == []  # not a byte read, the app never ran
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    assert "104857600 bytes" in json.loads(sent[1]["body"])["error"]


def test_a_chunked_body_is_cut_at_the_chunk_that_passes_the_cap():
    sent, seen, read = run([(b"transfer-encoding", b"chunked")], None)  # an endless body
    assert read == CAP // len(CHUNK) + 1  # 11 chunks: 11,000 bytes > 10,500, nothing after
    assert seen[-1] == {"type": "http.disconnect"}  # the app hears the client is gone
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]  # its own 200 dropped
    assert f"at most {CAP}" in json.loads(sent[1]["body"])["error"]


def test_a_body_under_the_cap_passes_unchanged():
    sent, _, read = run([(b"content-length", b"10000")], 10)
    assert read == 10 and sent[0]["status"] == 200 and sent[1]["body"] == b"10000"
