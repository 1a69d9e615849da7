"""Training epochs over tar shards: a fixed number of items per process, at the run's image size, resumable."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info

from contrastkit.data.multi_view_dataset import match_channels
from contrastkit.data.resize_center_crop import resize_center_crop
from contrastkit.data.skip_report import Skipped
from contrastkit.data.webdataset_shards import WebDatasetShards, _local_path


def count_shard_samples(urls: list[str]) -> int | None:
    """Samples (distinct keys) in local tar shards, from their headers only; a truncated shard counts what it
    holds up to the cut. None when a shard is remote (its size is not known without reading it)."""
    total = 0
    for url in urls:
        path = _local_path(url)
        if path is None:
            return None
        keys: set[str] = set()
        try:
            with tarfile.open(path) as tar:
                for member in tar:
                    if member.isfile():
                        base = os.path.basename(member.name)
                        keys.add(os.path.join(os.path.dirname(member.name), base.split(".", 1)[0]))
        except (tarfile.TarError, OSError, EOFError):
            pass  # a truncated or damaged shard: its readable samples are counted, the reader skips the rest
        total += len(keys)
    return total


class ShardEpochs(IterableDataset):
    """Each process reads ``batches`` batches of ``batch_size`` items per epoch from ``shards`` (its part of them,
    see :class:`WebDatasetShards`), brought to ``size`` x ``size`` with ``channels`` channels. Skipped items (corrupt
    members, samples without an image, the rest of a truncated shard) count as items and are dropped and counted by
    the collate. A reader whose shards run out reads them again, so every process takes the same number of steps
    (DDP needs it); with one process and no workers an epoch is every sample once, its last batch filled up from the
    start of the stream.

    ``set_epoch`` chooses the shuffle order; ``resume_at(epoch, batches_done)`` starts that epoch's next pass after
    the batches already trained. With DataLoader workers, worker ``w`` makes batches ``w, w + W, ...`` (the order in
    which the DataLoader takes them), so the resumed stream is the uninterrupted one's, batch for batch.
    """

    def __init__(self, shards: WebDatasetShards, batches: int, batch_size: int, size: int, channels: int) -> None:
        super().__init__()
        if batches < 1 or batch_size < 1:
            raise ValueError(f"batches and batch_size must be >= 1, got {batches}, {batch_size}")
        self.shards, self.batches, self.batch_size = shards, batches, batch_size
        self.size, self.channels = size, channels
        self.epoch = 0
        self.resume: tuple[int, int] | None = None  # (epoch, batches already trained): applied once

    def __len__(self) -> int:
        return self.batches * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.shards.set_epoch(epoch)

    def resume_at(self, epoch: int, batches_done: int) -> None:
        self.resume = (epoch, batches_done) if 0 < batches_done < self.batches else None

    def _raw(self) -> Iterator[Any]:
        """This reader's items, its shards read again when they run out (an empty share gives nothing)."""
        while True:
            seen = False
            for item in self.shards:
                seen = True
                yield item
            if not seen:
                return

    def __iter__(self) -> Iterator[tuple[Any, Any] | Skipped]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        quota = len(range(worker, self.batches, workers)) * self.batch_size  # items this reader makes
        skip = 0
        if self.resume is not None and self.resume[0] == self.epoch:
            skip = len(range(worker, self.resume[1], workers)) * self.batch_size
        for count, item in enumerate(self._raw()):
            if count >= quota:
                return
            if count < skip:
                continue
            if isinstance(item, Skipped):
                yield item
            else:
                image, target = item
                yield resize_center_crop(match_channels(image, self.channels), self.size), target
