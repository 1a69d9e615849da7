"""The learning-rate schedule follows the steps the run will actually take: whichever of max_epochs / max_steps
ends it, with gradient accumulation, grad caching, several processes (tests/train/test_ddp.py) and resumes.

Every expected value is the formula written out here: base = optim.lr x global batch / 256, linear warm-up
(s + 1) / W for s < W, then 0.5 (1 + cos(pi (s - W) / (T - W))); W = round(warmup_epochs x steps per epoch),
capped at floor(0.1 T).
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest

from contrastkit.data import load_dataset
from contrastkit.optim.warmup_cosine import MAX_WARMUP_FRACTION, WarmupCosine, plan_schedule
from contrastkit.train.fit import train
from tests.train.helpers import tiny_config

LR, BATCH = 0.1, 64  # tiny_config's optim.lr and data.batch_size
# the runs use half of the digits' training split: this many full batches (the sampler drops the last partial one)
BATCHES = math.floor(len(load_dataset("digits", split="train")) * 0.5) // BATCH


def warmup_for(warmup_epochs: float, steps_per_epoch: int, total: int) -> int:
    """The documented warm-up: warmup_epochs x steps per epoch, at most 10% of the run."""
    return min(round(warmup_epochs * steps_per_epoch), math.floor(0.1 * total))


def expected_lr(step: int, base: float, warmup: int, total: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min((step - warmup) / max(total - warmup, 1), 1.0)))


class RecordLR(pl.Callback):
    """The learning rate each optimiser step is taken with, by optimiser step."""

    def __init__(self) -> None:
        self.lrs: dict[int, float] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.lrs[trainer.global_step] = optimizer.param_groups[0]["lr"]


def _run(tmp_path, *overrides):
    recorder = RecordLR()
    train(tiny_config(tmp_path, *overrides), callbacks=[recorder])
    return recorder.lrs


def _check(lrs: dict[int, float], base: float, warmup: int, total: int) -> None:
    assert sorted(lrs) == list(range(total)), f"took steps {sorted(lrs)}, expected 0..{total - 1}"
    for step, lr in lrs.items():
        assert lr == pytest.approx(expected_lr(step, base, warmup, total), rel=1e-6, abs=1e-12), f"step {step}"


def test_epochs_end_the_run_and_a_long_warmup_is_shortened_with_one_line(tmp_path, capsys):
    # 3 epochs: T = 3 x BATCHES; one warm-up epoch (BATCHES steps) is more than 10% of that: shortened
    lrs = _run(tmp_path, "data.train_fraction=0.5", "trainer.max_epochs=3", "optim.warmup_epochs=1.0")
    total = 3 * BATCHES
    warmup = warmup_for(1.0, BATCHES, total)
    assert warmup == math.floor(0.1 * total) < BATCHES
    _check(lrs, base=LR * BATCH / 256, warmup=warmup, total=total)
    notes = [line for line in capsys.readouterr().out.splitlines() if "warm-up" in line]
    assert len(notes) == 1
    assert f"asks for {BATCHES} warm-up steps" in notes[0] and f"for {warmup} steps instead" in notes[0]


def test_max_steps_ends_the_run_before_max_epochs(tmp_path):
    # 5 epochs would be 5 x BATCHES steps; max_steps 20 ends the run first: T = 20 (the old code took 20 / 5
    # epochs as the steps per epoch)
    lrs = _run(
        tmp_path, "data.train_fraction=0.5", "trainer.max_epochs=5", "trainer.max_steps=20", "optim.warmup_epochs=0.1"
    )
    assert 5 * BATCHES > 20
    _check(lrs, base=LR * BATCH / 256, warmup=warmup_for(0.1, BATCHES, 20), total=20)


@pytest.mark.parametrize("grad_cache", [0, 16])
def test_accumulation_counts_optimiser_steps_and_scales_the_global_batch(tmp_path, grad_cache):
    # a step every 3 batches, and the last, shorter group of an epoch steps too: ceil(BATCHES / 3) steps per epoch;
    # the global batch is 3 x 64, which scales the learning rate
    lrs = _run(
        tmp_path,
        "data.train_fraction=0.5",
        "trainer.max_epochs=2",
        "trainer.accumulate_grad_batches=3",
        "optim.warmup_epochs=0.5",
        f"trainer.grad_cache_chunk_size={grad_cache}",
    )
    per_epoch = math.ceil(BATCHES / 3)
    assert per_epoch * 3 != BATCHES  # the epoch's last group is shorter
    _check(lrs, base=LR * 3 * BATCH / 256, warmup=warmup_for(0.5, per_epoch, 2 * per_epoch), total=2 * per_epoch)


class CrashAt(pl.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")


def test_resumed_run_continues_the_schedule_and_follows_changed_settings(tmp_path, capsys):
    common = ("data.train_fraction=0.5", "optim.warmup_epochs=0.25")
    first = RecordLR()
    train(tiny_config(tmp_path, *common, "trainer.max_epochs=2"), callbacks=[first])
    _check(first.lrs, base=LR * BATCH / 256, warmup=warmup_for(0.25, BATCHES, 2 * BATCHES), total=2 * BATCHES)
    capsys.readouterr()
    # resumed with max_epochs=4: the new steps follow the 4-epoch schedule, not the finished 2-epoch one (which
    # would train them at learning rate 0)
    resumed = RecordLR()
    train(tiny_config(tmp_path, *common, "trainer.max_epochs=4", "resume=last"), callbacks=[resumed])
    total = 4 * BATCHES
    assert sorted(resumed.lrs) == list(range(2 * BATCHES, total))
    for step, lr in resumed.lrs.items():
        expected = expected_lr(step, LR * BATCH / 256, warmup_for(0.25, BATCHES, total), total)
        assert lr == pytest.approx(expected, rel=1e-6), f"step {step}"
    out = capsys.readouterr().out
    assert f"resumed at optimiser step {2 * BATCHES} with changed settings" in out


def test_resume_with_the_same_settings_matches_the_uninterrupted_schedule(tmp_path):
    common = ("data.train_fraction=0.5", "trainer.max_epochs=3", "optim.warmup_epochs=0.25")
    first = RecordLR()
    crash = BATCHES + 5  # in epoch 1: last.ckpt holds the end of epoch 0
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tmp_path, *common), callbacks=[first, CrashAt(crash)])
    resumed = RecordLR()
    train(tiny_config(tmp_path, *common, "resume=last"), callbacks=[resumed])
    total = 3 * BATCHES
    assert sorted(resumed.lrs) == list(range(BATCHES, total))
    for step, lr in resumed.lrs.items():
        expected = expected_lr(step, LR * BATCH / 256, warmup_for(0.25, BATCHES, total), total)
        assert lr == pytest.approx(expected, rel=1e-6), f"step {step}"
    for step in range(BATCHES, crash):  # the steps taken twice got the same learning rate both times
        assert resumed.lrs[step] == first.lrs[step]


@pytest.mark.parametrize(
    ("warmup_epochs", "batches", "accumulate", "max_epochs", "max_steps", "total", "warmup"),
    [
        (0.0, 100, 1, 10, -1, 1000, 0),
        (1.0, 100, 1, 10, -1, 1000, 100),  # exactly 10%: kept
        (1.0, 100, 1, 5, -1, 500, 50),  # 20%: shortened
        (2.0, 100, 4, 10, -1, 250, 25),  # ceil(100 / 4) = 25 steps per epoch; 50 requested, 25 allowed
        (0.5, 101, 4, 3, -1, 78, 7),  # ceil(101 / 4) = 26 per epoch; 13 requested, floor(7.8) allowed
        (0.1, 100, 1, 100, 300, 300, 10),  # max_steps first: 10 per epoch requested, 30 allowed
        (10.0, 50, 1, 100, 20, 20, 2),  # 500 requested, 2 allowed
    ],
)
def test_plan_schedule(warmup_epochs, batches, accumulate, max_epochs, max_steps, total, warmup):
    plan = plan_schedule(warmup_epochs, batches, accumulate, max_epochs, max_steps)
    assert (plan.total_steps, plan.warmup_steps) == (total, warmup)
    assert plan.warmup_steps <= MAX_WARMUP_FRACTION * plan.total_steps
    assert (plan.note is None) == (plan.warmup_steps == round(warmup_epochs * math.ceil(batches / accumulate)))


def test_warmup_cosine_formula():
    schedule = WarmupCosine(warmup_steps=5, total_steps=25, min_ratio=0.1)
    for step in range(30):
        if step < 5:
            expected = (step + 1) / 5
        else:
            expected = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min((step - 5) / 20, 1.0)))
        assert schedule(step) == pytest.approx(expected)
    assert schedule(24) > schedule(25) == pytest.approx(0.1)


def test_plan_schedule_refuses_an_empty_epoch():
    with pytest.raises(ValueError, match="batches_per_epoch"):
        plan_schedule(1.0, 0, 1, 1)
