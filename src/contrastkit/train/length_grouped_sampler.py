"""Batches of texts of similar length: far less padding for the same global batches on any number of processes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from contrastkit.train.data_module import ShardedBatchSampler


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
