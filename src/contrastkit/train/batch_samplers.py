"""The batch samplers of training: one process's shard of a seeded order, batched; texts grouped by length; the
sampler of a run, resumed mid-epoch where its checkpoint stood. Imports nothing of the trainer."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DistributedSampler, Sampler


class ShardedBatchSampler(Sampler[list[int]]):
    """Batches of indices of one process's shard: a ``DistributedSampler`` (seeded shuffle, set_epoch) batched.

    With one process it is the whole data set in the seeded order; with P processes, process ``r`` takes positions
    ``r, r + P, ...`` of that order, so the P local batches of step k together hold exactly the single-process
    batch k of ``P x batch_size`` images: the global batch does not depend on how many processes share it.
    """

    def __init__(self, n: int, batch_size: int, rank: int, world_size: int, seed: int) -> None:
        self.order = DistributedSampler(
            range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.batch_size = batch_size
        self.epoch = 0
        self.resume: tuple[int, int] | None = None  # (epoch, batches already trained): skipped once

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order.set_epoch(epoch)

    def resume_at(self, epoch: int, batches: int) -> None:
        """Start epoch ``epoch``'s next pass after its first ``batches`` batches (a mid-epoch resume: the same
        stream of batches as an uninterrupted run). Any other epoch is unaffected; it applies once."""
        self.resume = (epoch, batches) if 0 < batches < len(self) else None

    def __iter__(self) -> Iterator[list[int]]:
        skip = 0
        if self.resume is not None and self.resume[0] == self.epoch:
            skip, self.resume = self.resume[1], None
        batch: list[int] = []
        for index in itertools.islice(self.local_order(), skip * self.batch_size, None):
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []

    def local_order(self) -> Iterator[int]:
        """This process's indices for the epoch, in order."""
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order) // self.batch_size


def resume_position(trainer: Any) -> dict[str, int] | None:
    """The data position (epoch, batches trained) of the checkpoint this run resumed from, None when it did not."""
    return getattr(trainer.lightning_module, "resume_position", None) if trainer is not None else None


def sharded_sampler(
    trainer: Any, n: int, batch_size: int, seed: int, items: str, lengths: Sequence[int] | None = None, window: int = 0
) -> ShardedBatchSampler:
    """This process's :class:`ShardedBatchSampler` over ``n`` training ``items`` (rank and world size from the
    Lightning ``trainer``; one process without one); fewer items than one global batch are refused. With
    ``lengths`` and ``window`` > 0, batches of similar length (a ``LengthGroupedBatchSampler``)."""
    rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
    if n < batch_size * world:
        raise ValueError(
            f"data has {n} training {items}, fewer than one global batch ({batch_size} x {world} processes): "
            "lower data.batch_size"
        )
    if lengths is not None and window > 0:
        if len(lengths) != n:
            raise ValueError(f"{len(lengths)} lengths for {n} training {items}")
        sampler = LengthGroupedBatchSampler(lengths, batch_size, rank, world, seed, window)
    else:
        sampler = ShardedBatchSampler(n, batch_size, rank, world, seed)
    position = resume_position(trainer)
    if position:  # resumed from a checkpoint: continue its epoch's stream where it stood
        sampler.resume_at(position["epoch"], position["batches"])
    return sampler


def group_by_length(order: list[int], lengths: Sequence[int], group: int, window: int, seed: int) -> list[int]:
    """``order`` rearranged so that each run of ``group`` positions holds items of similar length.

    The order is cut into windows of ``window`` groups; each window is sorted by length (longest first) and cut into
    groups, and all full groups are shuffled (seeded) so that neither long nor short batches cluster in time; the
    items of an incomplete last group stay at the end. Items are only moved within a window, so batches stay
    random mixtures of the data (the grouping of ``group_by_length`` in Hugging Face's trainer, done over global
    batches).
    """
    groups, rest = [], []
    step = group * window
    for begin in range(0, len(order), step):
        chunk = sorted(order[begin : begin + step], key=lambda i: -lengths[i])
        full = len(chunk) // group * group
        groups += [chunk[i : i + group] for i in range(0, full, group)]
        rest += chunk[full:]
    generator = torch.Generator().manual_seed(seed)
    shuffled = [groups[i] for i in torch.randperm(len(groups), generator=generator).tolist()]
    return [i for g in shuffled for i in g] + rest


class LengthGroupedBatchSampler(ShardedBatchSampler):
    """A :class:`ShardedBatchSampler` whose global batches (``batch_size`` x processes items) hold items of similar
    length (:func:`group_by_length` over windows of ``window`` global batches of the seeded order).

    Process ``r`` still takes positions ``r, r + P, ...`` of the (grouped) global order, so the P local batches of
    step k together are the single-process batch k of the same global size, and resuming mid-epoch is exact.

    Args:
        lengths: the length of each item (e.g. its longest text in tokens).
        window: global batches sorted together; larger = less padding, batches less random in length.
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, rank: int, world_size: int, seed: int, window: int = 16
    ) -> None:
        super().__init__(len(lengths), batch_size, rank, world_size, seed)
        self.lengths, self.window = list(lengths), int(window)
        self.seed, self.rank, self.world_size = seed, rank, world_size

    def local_order(self) -> Iterator[int]:
        n, world = len(self.lengths), self.world_size
        total = n // world * world
        generator = torch.Generator().manual_seed(self.seed + self.epoch)  # DistributedSampler's own shuffle
        order = torch.randperm(n, generator=generator).tolist()
        # grouped before the tail is cut, so that every process count sees the same full global batches (the cut
        # takes fewer than one global batch, from the incomplete group at the end)
        grouped = group_by_length(order, self.lengths, self.batch_size * world, self.window, self.seed + self.epoch)
        return iter(grouped[self.rank : total : world])
