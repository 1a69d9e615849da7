"""``checkpoints/interrupted.ckpt`` on Ctrl-C or a crash, holding the state after the last *completed* step.

A Ctrl-C (or an error) arrives at any point of a step. Before the optimiser step (the forward and backward passes)
the weights are still those of the last completed step, but the module's buffers are not: BatchNorm's running
statistics and ``num_batches_tracked`` have seen the aborted step's batch, MoCo's queue may hold its keys. During
the optimiser step the weights themselves are half updated. :class:`InterruptCheckpoint` therefore

* copies the module's buffers (and the global RNG states) when a step starts and puts them back when the step is
  aborted before its optimiser step, and
* defers a Ctrl-C that arrives during the optimiser step to the end of that step (``on_train_batch_end``, where the
  mid-epoch step checkpoints are written too),

so that the checkpoint it writes resumes exactly like a step checkpoint would (tests/train/test_interrupt_state.py).

With gradient accumulation (``trainer.accumulate_grad_batches=k``) a step spans k batches, and the gradients of a
window's first batches are not in any checkpoint. The snapshot is then taken when a window starts, and a stop inside
a window also moves the fit loop's batch counters back to its start (:func:`rewind_batches`): the checkpoint is the
state after the last completed optimiser step, and the resumed run trains the whole window again, batch for batch.
"""

from __future__ import annotations

import errno
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Checkpoint

from contrastkit.train.lit_method import rng_state, set_rng_state


class StepSnapshot:
    """The module's buffers and the RNG states at the start of a step, restored when the step is aborted.

    The copies are allocated once and refreshed in place every step (buffers are small beside the weights: BatchNorm
    statistics, a MoCo queue, a DINO centre)."""

    def __init__(self) -> None:
        self.buffers: dict[str, torch.Tensor] = {}
        self.rng: dict[str, Any] | None = None

    @torch.no_grad()
    def take(self, module: torch.nn.Module) -> None:
        """Copy ``module``'s buffers and the global RNG states."""
        for name, buffer in module.named_buffers():
            saved = self.buffers.get(name)
            if saved is None or saved.shape != buffer.shape or saved.dtype != buffer.dtype:
                self.buffers[name] = buffer.detach().clone()
            else:
                saved.copy_(buffer)
        self.rng = rng_state()

    @torch.no_grad()
    def restore(self, module: torch.nn.Module) -> None:
        """Put back what :meth:`take` copied."""
        for name, buffer in module.named_buffers():
            if name in self.buffers:
                buffer.copy_(self.buffers[name])
        if self.rng is not None:
            set_rng_state(self.rng)


class InterruptCheckpoint(Checkpoint):
    """Saves ``path`` when training stops on an exception or Ctrl-C (the epoch checkpoints stay untouched), with the
    state after the last completed step (see the module docstring).

    Unlike Lightning's ``OnExceptionCheckpoint`` it does not make ``fit`` resume from it implicitly: a run resumes
    only when ``resume`` says so. Nothing is saved when the run stopped before training a step (a failed start
    must not replace an earlier ``interrupted.ckpt`` with an untrained model). A ``Checkpoint`` subclass, so that
    Lightning calls it after the other callbacks (a Ctrl-C deferred to a step's end comes after that step's
    checkpoint is written).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start_step: int | None = None  # the step training started at in this session (None: not started)
        self.snapshot = StepSnapshot()
        self.phase: str | None = None  # "forward" (weights untouched yet), "update" (optimiser step), None (between)
        self.deferred = False  # a Ctrl-C arrived during the optimiser step
        self.window_done = 0  # batches completed since the last optimiser step (gradient accumulation)
        self.stepped = False  # the current batch ran an optimiser step
        self._previous_handler: Any = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start_step = trainer.global_step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        if self.window_done == 0:  # a step's first batch: the state its window started from
            self.snapshot.take(pl_module)
        self.phase, self.stepped = "forward", False

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        self.phase, self.stepped = "update", True
        if threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous_handler = signal.signal(signal.SIGINT, self._defer)

    def _defer(self, signum: int, frame: Any) -> None:
        self.deferred = True

    def _restore_handler(self) -> None:
        if self._previous_handler is not None and signal.getsignal(signal.SIGINT) == self._defer:
            signal.signal(signal.SIGINT, self._previous_handler)
        self._previous_handler = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self.phase = None
        self.window_done = 0 if self.stepped else self.window_done + 1
        self._restore_handler()
        if self.deferred:
            self.deferred = False
            raise KeyboardInterrupt  # the step is complete: stop here, as Ctrl-C asked

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore_handler()
        if self.phase == "forward" or (self.phase is None and self.window_done):
            # stopped before the optimiser step of its window: back to the state after the last completed step,
            # and the window's completed batches counted as not trained (their gradients are lost)
            self.snapshot.restore(pl_module)
            rewind_batches(trainer, self.window_done)
        self.phase, self.window_done = None, 0
        saved = self.start_step is not None and trainer.global_step > self.start_step  # this session trained a step
        if isinstance(exception, OSError) and exception.errno == errno.ENOSPC:
            saved = False  # a full disk: another checkpoint would fail too, and hide which file could not be written
        if saved and trainer.world_size == 1:
            trainer.save_checkpoint(self.path, weights_only=False)
        elif saved and trainer.is_global_zero:
            # another process may be gone (a lost worker): no collective, no barrier (it would wait for the dead
            # peer); process 0 writes the state it holds, the same on every process after the last step
            state = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
            trainer.strategy.checkpoint_io.save_checkpoint(state, self.path)
        if not trainer.is_global_zero:
            return
        why = "interrupted" if isinstance(exception, KeyboardInterrupt) else f"stopped by {type(exception).__name__}"
        last = self.path.with_name("last.ckpt")
        resume = self.path if saved else last if last.is_file() else None
        then = f"continue with the same command and resume={resume}" if resume else "no step to keep: start it again"
        print(f"contrastkit: training {why} at step {trainer.global_step}; {then}", file=sys.stderr)
        skips = getattr(getattr(trainer, "datamodule", None), "skips", None)
        if skips is not None and skips.count:
            print(skips.summary(total=None), file=sys.stderr)


def rewind_batches(trainer: pl.Trainer, count: int) -> None:
    """Count the epoch's last ``count`` completed batches as not started (in place, in the fit loop's progress
    that a checkpoint saves), so that a resume trains them again: the batches of an accumulation window whose
    optimiser step never came."""
    if count <= 0:
        return
    progress = trainer.fit_loop.epoch_loop.batch_progress
    for counts in (progress.total, progress.current):
        counts.completed -= count
        counts.ready = counts.started = counts.processed = counts.completed
    progress.is_last_batch = False
