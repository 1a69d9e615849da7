"""The sampler's partition: P processes' batches of step k together are exactly the one-process batch k."""

import pytest

from contrastkit.train.data_module import ShardedBatchSampler


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

    from contrastkit.train.data_module import sharded_sampler

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
