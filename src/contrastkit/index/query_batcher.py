"""Dynamic micro-batching: queries that arrive together are embedded by one encoder call, each caller gets its row."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

import numpy as np
import torch

Item = TypeVar("Item")

MAX_WAIT_S = 0.002  # how long a batch that is not full waits for more queries once the encoder is free


class QueryBatcher(Generic[Item]):
    """Collects the queries that arrive while the encoder is busy and embeds them in one call.

    Each :meth:`embed` call queues its query and waits. One drain task (started by the first query, gone when the
    queue is empty) takes up to ``max_batch`` queued queries, waits up to ``max_wait_s`` for more when fewer are
    queued, and runs ``encode`` on them in its own worker thread (one encoder call at a time, the event loop stays
    free to accept requests), then hands every caller its row. Under load batches fill up by themselves; a lone query
    waits ``max_wait_s`` at most. ``max_batch=1`` embeds one query at a time (no batching).

    A batch whose call fails is retried one query at a time, so a query that breaks the encoder fails alone.

    Args:
        encode: queries to their embeddings ``(B, D)``; it must give each query the embedding it gets alone (a text
            encoder masks padding; an image encoder in eval mode treats images independently).
        max_batch: most queries per encoder call.
        max_wait_s: seconds a batch that is not full waits for more queries.
    """

    def __init__(
        self, encode: Callable[[Sequence[Item]], torch.Tensor], max_batch: int = 64, max_wait_s: float = MAX_WAIT_S
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self.encode = encode
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.batch_sizes: list[int] = []  # every encoder call's batch size (for tests and benchmarks)
        self._queue: list[tuple[Item, asyncio.Future]] = []
        self._drain_task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="contrastkit-embed")

    async def embed(self, item: Item) -> np.ndarray:
        """The embedding ``(D,)`` of one query, computed in a batch with whatever queries arrive with it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._queue.append((item, future))
        if self._drain_task is None or self._drain_task.done() or self._drain_task.get_loop() is not loop:
            self._drain_task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            if len(self._queue) < self.max_batch and self.max_wait_s > 0:
                await asyncio.sleep(self.max_wait_s)
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            batch = [(item, future) for item, future in batch if not future.done()]  # callers gone are skipped
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                rows = await loop.run_in_executor(self._executor, self._embed_rows, [item for item, _ in batch])
            except Exception as e:  # (the worker is gone: every caller of the batch hears it)
                rows = [e] * len(batch)
            for (_, future), row in zip(batch, rows, strict=True):
                if future.done():
                    continue
                if isinstance(row, Exception):
                    future.set_exception(row)
                else:
                    future.set_result(row)

    def _embed_rows(self, items: list[Item]) -> list[np.ndarray | Exception]:
        """One encoder call on ``items`` (in the worker thread); on failure one call per item, so only the query
        that fails gets its exception."""
        try:
            return list(self._call(items))
        except Exception as e:  # (found out below, query by query)
            if len(items) == 1:
                return [e]
        rows: list[np.ndarray | Exception] = []
        for item in items:
            try:
                rows.append(self._call([item])[0])
            except Exception as e:  # (handed to that query's caller)
                rows.append(e)
        return rows

    def _call(self, items: list[Item]) -> np.ndarray:
        with torch.inference_mode():  # grad mode is per thread: set it in the worker
            features = self.encode(items)  # (B, D)
        features = np.asarray(features.detach().float().cpu(), dtype=np.float32)  # (B, D)
        if features.ndim != 2 or len(features) != len(items):
            raise RuntimeError(f"the encoder gave {tuple(features.shape)} for {len(items)} queries")
        return features

    def close(self) -> None:
        """Stop the worker thread (queries still queued are not answered)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
