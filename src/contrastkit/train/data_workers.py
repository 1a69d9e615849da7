"""How many DataLoader worker processes a training process starts."""

from __future__ import annotations

import os

import lightning.pytorch as pl

MAX_DATA_WORKERS = 16  # per training process: each worker holds prefetched batches (2 of 256 images at 256 px are
# 100 MB), so a 128-core node with one GPU does not start 128 of them


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity: a container's or a job scheduler's share, not the node's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def data_workers(configured: int | None, trainer: pl.Trainer | None) -> int:
    """``configured`` when set (``data.num_workers``), else the usable cores shared among the node's training
    processes (one per device), at least 1 and at most :data:`MAX_DATA_WORKERS`.

    The images in a batch do not depend on the count for folders and built-in data (the sampler orders them);
    for tar shards each worker reads its own shards, so set ``data.num_workers`` to reproduce a run's order on a
    machine with another number of cores."""
    if configured is not None:
        return configured
    processes = max(1, trainer.num_devices) if trainer is not None else 1
    return max(1, min(MAX_DATA_WORKERS, usable_cores() // processes))
