"""Run a worker function in several fresh CPU processes (for gloo tests), failing instead of hanging."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch.multiprocessing as mp


def run_processes(worker: Callable, args: tuple, nprocs: int = 2, timeout: float = 120.0) -> None:
    """Start ``worker(rank, *args)`` in ``nprocs`` spawned processes and wait for all of them.

    Spawn, not fork: forking a parent whose OpenMP/gloo threads are running can deadlock the children.
    """
    ctx = mp.start_processes(worker, args=args, nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"distributed workers did not finish within {timeout} s")
