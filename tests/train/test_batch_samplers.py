"""The sampler's partition: P processes' batches of step k together are exactly the one-process batch k."""

import numpy as np
import pytest

from contrastkit.train.batch_samplers import LengthGroupedBatchSampler, ShardedBatchSampler, group_by_length


@pytest.mark.parametrize("world", [2, 3, 4])
def test_processes_split_each_single_process_global_batch_exactly(world):
    n, batch, seed = 103, 5, 7
    single = list(ShardedBatchSampler(n, batch * world, rank=0, world_size=1, seed=seed))
    shards = [list(ShardedBatchSampler(n, batch, rank=r, world_size=world, seed=seed)) for r in range(world)]
    steps = min(len(s) for s in shards)
    assert all(len(s) == steps for s in shards)  # every process takes the same number of steps
    for k in range(steps):
        together = sorted(i for s in shards for i in s[k])
        assert together == sorted(single[k])  # the same global batch, whatever the number of processes
    seen = [i for s in shards for b in s for i in b]
    assert len(seen) == len(set(seen))  # no image twice in an epoch, on any process


def test_epochs_reshuffle_reproducibly_and_len_counts_full_batches():
    sampler = ShardedBatchSampler(50, 8, rank=0, world_size=1, seed=1)
    assert len(sampler) == 6 and all(len(b) == 8 for b in sampler)  # 48 of 50: the last partial batch is dropped
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert first != second
    again = ShardedBatchSampler(50, 8, rank=0, world_size=1, seed=1)
    again.set_epoch(1)
    assert list(again) == second


def test_fewer_items_than_one_global_batch_are_refused_with_the_numbers():
    from types import SimpleNamespace

    from contrastkit.train.batch_samplers import sharded_sampler

    trainer = SimpleNamespace(global_rank=1, world_size=2, lightning_module=None)
    assert len(sharded_sampler(trainer, 40, 10, 0, "pairs")) == 2
    with pytest.raises(ValueError, match=r"data has 30 training pairs, fewer than one global batch \(16 x 2 processes"):
        sharded_sampler(trainer, 30, 16, 0, "pairs")


def test_resume_at_skips_the_trained_batches_of_that_epoch_once():
    sampler = ShardedBatchSampler(100, 8, rank=0, world_size=1, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)  # 12 batches of the epoch-2 order
    sampler.resume_at(2, 5)
    assert list(sampler) == full[5:]  # the same stream, after the 5 batches already trained
    assert list(sampler) == full  # once: the next pass of the epoch is whole
    sampler.resume_at(1, 5)
    assert list(sampler) == full  # another epoch's position does not apply
    sampler.resume_at(2, 12)  # an epoch that was finished: nothing to skip (the next epoch starts whole)
    assert list(sampler) == full


# length-grouped batches: the same partition guarantees as the plain sampler, and much less padding
LENGTHS = np.random.default_rng(0).integers(4, 129, size=203).tolist()  # token counts of 203 items


def padded_tokens(batches, lengths):
    """Tokens a batch costs when padded to its longest item, summed over the batches."""
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_length_grouped_processes_split_each_single_process_global_batch_exactly(world):
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
