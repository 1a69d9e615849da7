"""Ctrl-C (a real SIGINT to this process) in the middle of a step: ``interrupted.ckpt`` holds the state after the
last *completed* step (BatchNorm's running statistics and ``num_batches_tracked``, MoCo's queue, the weights), equal
to the step checkpoint an uninterrupted run wrote after that step, and resuming from it equals the uninterrupted run.
Before the fix the checkpoint's BatchNorm statistics included the aborted step's forward pass (issue 27, item 5)."""

from __future__ import annotations

import os
import signal

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from contrastkit.train.fit import train
from contrastkit.train.interrupt import InterruptCheckpoint
from tests.train.resume_runs import resume_config
from tests.train.test_mid_epoch_resume import _state, assert_same_weights

EVERY_STEP = ("trainer.checkpoint_every_n_steps=1", "trainer.keep_checkpoints=16")  # a reference after each step
STEP = 5  # optimiser steps completed when Ctrl-C comes


@pytest.fixture(autouse=True)
def default_sigint():
    """Python's own Ctrl-C handler during each test, and the previous one back after it (Lightning ignores SIGINT
    once it has caught one)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _sigint() -> None:
    os.kill(os.getpid(), signal.SIGINT)


class CtrlCInForward(pl.Callback):
    """SIGINT right after the backbone's first BatchNorm layer has seen the batch of step ``step``."""

    def __init__(self, step: int) -> None:
        self.step, self.sent, self.trainer = step, False, None

    def on_train_start(self, trainer, pl_module) -> None:
        self.trainer = trainer
        norm = next(m for m in pl_module.method.backbone.modules() if isinstance(m, nn.BatchNorm2d))
        norm.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output) -> None:
        if module.training and self.trainer.global_step == self.step and not self.sent:
            self.sent = True
            _sigint()


class CtrlCInOptimizerStep(pl.Callback):
    """SIGINT inside the optimiser's ``step`` of step ``step`` (after its update, before Lightning counts it)."""

    def __init__(self, step: int) -> None:
        self.step, self.sent, self.handle = step, False, None

    def on_train_start(self, trainer, pl_module) -> None:
        def hook(optimizer, args, kwargs) -> None:
            if trainer.global_step == self.step and not self.sent:
                self.sent = True
                _sigint()

        self.handle = register_optimizer_step_post_hook(hook)

    def teardown(self, trainer, pl_module, stage) -> None:
        if self.handle is not None:
            self.handle.remove()


@pytest.fixture(scope="module", params=["simclr", "moco"])
def reference(request, tmp_path_factory):
    """An uninterrupted run (method, final weights, its checkpoints folder: one step-*.ckpt after every step)."""
    out = tmp_path_factory.mktemp(f"full-{request.param}")
    result = train(resume_config(out, request.param, 1, *EVERY_STEP))
    return request.param, _state(result.checkpoint), result.checkpoint.parent


def _interrupted(out, method: str, callback: pl.Callback) -> dict:
    with pytest.raises(SystemExit):  # Lightning's answer to Ctrl-C: interrupted.ckpt, then exit 1
        train(resume_config(out, method, 1, *EVERY_STEP), callbacks=[callback])
    return torch.load(out / "tiny" / "checkpoints" / "interrupted.ckpt", map_location="cpu", weights_only=True)


def _resumed_equals_reference(out, method: str, reference_weights: dict) -> None:
    interrupted = out / "tiny" / "checkpoints" / "interrupted.ckpt"
    resumed = train(resume_config(out, method, 1, *EVERY_STEP, f"resume={interrupted}"))
    assert_same_weights(_state(resumed.checkpoint), reference_weights)


def test_ctrl_c_in_the_forward_pass_keeps_the_last_completed_step(tmp_path, reference):
    method, final, checkpoints = reference
    saved = _interrupted(tmp_path, method, CtrlCInForward(STEP))
    after_step = _state(checkpoints / f"step-{STEP:07d}.ckpt")  # the uninterrupted run after STEP steps
    assert saved["global_step"] == STEP
    tracked = [k for k in after_step if k.endswith("num_batches_tracked")]
    assert tracked and all(int(saved["state_dict"][k]) == int(after_step[k]) for k in tracked)
    assert_same_weights(saved["state_dict"], after_step)  # running means / variances, MoCo's queue, weights
    assert saved["contrastkit"]["data_position"] == {"epoch": 0, "batches": STEP}
    _resumed_equals_reference(tmp_path, method, final)


def test_ctrl_c_in_the_optimizer_step_ends_that_step_first(tmp_path, reference):
    method, final, checkpoints = reference
    saved = _interrupted(tmp_path, method, CtrlCInOptimizerStep(STEP))
    assert saved["global_step"] == STEP + 1  # the step whose update had begun was finished, then training stopped
    assert_same_weights(saved["state_dict"], _state(checkpoints / f"step-{STEP + 1:07d}.ckpt"))
    assert saved["contrastkit"]["data_position"] == {"epoch": 0, "batches": STEP + 1}
    handler = signal.getsignal(signal.SIGINT)
    assert not isinstance(getattr(handler, "__self__", None), InterruptCheckpoint)  # the deferring one is gone
    _resumed_equals_reference(tmp_path, method, final)


ACCUMULATE = ("trainer.accumulate_grad_batches=2", *EVERY_STEP)  # a step every 2 batches: 4 steps an epoch


class CtrlCInWindow(pl.Callback):
    """SIGINT in the second batch of the window of step ``step`` (the first batch's gradients accumulated): in its
    forward pass (``where="forward"``), or as it starts, before the checkpoint callback has seen it (``"between"``)."""

    def __init__(self, step: int, where: str) -> None:
        self.step, self.where, self.sent, self.trainer, self.in_window = step, where, False, None, 0

    def on_train_start(self, trainer, pl_module) -> None:
        self.trainer = trainer
        norm = next(m for m in pl_module.method.backbone.modules() if isinstance(m, nn.BatchNorm2d))
        norm.register_forward_hook(self._hook)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.in_window = self.in_window + 1 if trainer.global_step == self.step else 0
        if self.where == "between" and self.in_window == 2 and not self.sent:
            self.sent = True
            _sigint()

    def _hook(self, module, inputs, output) -> None:
        if self.where == "forward" and module.training and self.in_window == 2 and not self.sent:
            self.sent = True
            _sigint()


@pytest.fixture(scope="module")
def accumulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("full-accumulated")
    result = train(resume_config(out, "simclr", 1, *ACCUMULATE))
    return _state(result.checkpoint), result.checkpoint.parent


@pytest.mark.parametrize("where", ["forward", "between"])
def test_ctrl_c_inside_an_accumulation_window_goes_back_to_its_start(tmp_path, accumulated, where):
    """Before: the checkpoint counted the window's first batch as trained, and its gradients were lost, so the
    resumed run's step 6 had half of its window's gradients."""
    final, checkpoints = accumulated
    with pytest.raises(SystemExit):
        train(resume_config(tmp_path, "simclr", 1, *ACCUMULATE), callbacks=[CtrlCInWindow(STEP, where)])
    saved = torch.load(tmp_path / "tiny" / "checkpoints" / "interrupted.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == STEP
    assert_same_weights(saved["state_dict"], _state(checkpoints / f"step-{STEP:07d}.ckpt"))  # BatchNorm too
    assert saved["contrastkit"]["data_position"] == {"epoch": 1, "batches": 2}  # step 5's window: batches 2, 3
    interrupted = tmp_path / "tiny" / "checkpoints" / "interrupted.ckpt"
    resumed = train(resume_config(tmp_path, "simclr", 1, *ACCUMULATE, f"resume={interrupted}"))
    assert_same_weights(_state(resumed.checkpoint), final)
