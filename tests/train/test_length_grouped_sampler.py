"""Length-grouped batches: the same partition guarantees as the plain sampler, and much less padding."""

import numpy as np
import pytest

from contrastkit.train.data_module import ShardedBatchSampler
from contrastkit.train.length_grouped_sampler import LengthGroupedBatchSampler, group_by_length

LENGTHS = np.random.default_rng(0).integers(4, 129, size=203).tolist()  # token counts of 203 items


def padded_tokens(batches, lengths):
    """Tokens a batch costs when padded to its longest item, summed over the batches."""
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_processes_split_each_single_process_global_batch_exactly(world):
    batch, seed = 4, 5
    single = list(LengthGroupedBatchSampler(LENGTHS, batch * world, rank=0, world_size=1, seed=seed))
    shards = [list(LengthGroupedBatchSampler(LENGTHS, batch, r, world, seed)) for r in range(world)]
    steps = min(len(s) for s in shards)
    assert all(len(s) == steps == len(single) for s in shards)
    for k in range(steps):
        assert sorted(i for s in shards for i in s[k]) == sorted(single[k])
    seen = [i for s in shards for b in s for i in b]
    assert len(seen) == len(set(seen)) >= len(LENGTHS) - batch * world  # each item once; only a tail left out


def test_batches_are_similar_in_length_and_cost_far_less_padding_than_random_ones():
    grouped = LengthGroupedBatchSampler(LENGTHS, 8, 0, 1, seed=1, window=8)
    plain = ShardedBatchSampler(len(LENGTHS), 8, 0, 1, seed=1)
    real = sum(LENGTHS[i] for b in grouped for i in b)
    assert padded_tokens(grouped, LENGTHS) < 1.15 * real  # nearly no padding
    assert padded_tokens(plain, LENGTHS) > 1.4 * real  # random batches pad to their longest: ~1.6x here
    spans = [max(LENGTHS[i] for i in b) - min(LENGTHS[i] for i in b) for b in grouped]
    assert np.median(spans) < 20  # a window of 8 batches = 64 of 203 items sorted: neighbours in length
    # batches are not in length order (long and short ones are mixed in time)
    longest = [max(LENGTHS[i] for i in b) for b in grouped]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_each_epoch_is_a_new_reproducible_grouping_and_resume_continues_it():
    sampler = LengthGroupedBatchSampler(LENGTHS, 8, 0, 1, seed=2)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert first != second
    again = LengthGroupedBatchSampler(LENGTHS, 8, 0, 1, seed=2)
    again.set_epoch(1)
    assert list(again) == second
    again.resume_at(1, 7)
    assert list(again) == second[7:]


def test_group_by_length_only_moves_items_within_a_window():
    order = list(range(40))
    lengths = list(range(40))[::-1]  # item i has length 39 - i
    grouped = group_by_length(order, lengths, group=4, window=2, seed=0)
    assert sorted(grouped) == order
    groups = [grouped[i : i + 4] for i in range(0, 40, 4)]
    for g in groups:  # every group comes from one window of 8 consecutive items
        assert len({i // 8 for i in g}) == 1
