"""Resume from an *epoch-end* checkpoint (``trainer.checkpoint_every_minutes=0``: the only kind a short run has) of a
run that ends by ``max_steps``: the same weights and data position as an uninterrupted run, after a crash or a
SIGKILL, with one process or two. Without :func:`continue_after_epoch_end` the resumed run trains one extra batch at
the end of the checkpoint's epoch and reads every later epoch's order one epoch ahead (issue 27, item 5)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from contrastkit.train import lit_method
from contrastkit.train.fit import train
from contrastkit.train.loop_state import continue_after_epoch_end
from tests.train.helpers import kill_matrix
from tests.train.resume_runs import EPOCH_END_ONLY, STEPS_PER_EPOCH, resume_config
from tests.train.test_mid_epoch_resume import _launch, _ok, _state, assert_same_weights
from tests.train.test_resume import CrashAt

FINAL_POSITION = {"epoch": 2, "batches": 4}  # 20 steps of 8 per epoch


def _load(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


class Batches(pl.Callback):
    """Records (epoch, batch index, step, a fingerprint of the images) of every trained batch."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int, int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        images = batch[0]
        self.seen.append((trainer.current_epoch, batch_idx, trainer.global_step, int(images.long().sum())))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict[str, torch.Tensor], list[tuple[int, int, int, int]], dict]:
    batches = Batches()
    result = train(resume_config(tmp_path_factory.mktemp("full"), "simclr", 1, *EPOCH_END_ONLY), callbacks=[batches])
    return _state(result.checkpoint), batches.seen, _load(result.checkpoint)["contrastkit"]["data_position"]


def _crash_after_the_first_epoch(out) -> None:
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(resume_config(out, "simclr", 1, *EPOCH_END_ONLY), callbacks=[CrashAt(epoch=1, batch=3)])
    last = _load(out / "tiny" / "checkpoints" / "last.ckpt")
    assert last["global_step"] == STEPS_PER_EPOCH  # the end-of-epoch-0 checkpoint, nothing newer
    assert last["contrastkit"]["data_position"] == {"epoch": 0, "batches": STEPS_PER_EPOCH}


def test_a_crash_after_an_epoch_end_checkpoint_resumes_on_the_same_stream(tmp_path, uninterrupted):
    reference, reference_batches, reference_position = uninterrupted
    assert reference_position == FINAL_POSITION
    _crash_after_the_first_epoch(tmp_path)
    batches = Batches()
    resumed = train(resume_config(tmp_path, "simclr", 1, *EPOCH_END_ONLY, "resume=last"), callbacks=[batches])
    assert batches.seen == reference_batches[STEPS_PER_EPOCH:]  # epoch 1 from its first batch, no batch replayed
    assert _load(resumed.checkpoint)["contrastkit"]["data_position"] == FINAL_POSITION
    assert_same_weights(_state(resumed.checkpoint), reference)


def test_without_the_loop_fix_the_resumed_run_would_differ(tmp_path, uninterrupted, monkeypatch):
    """The test above can fail: Lightning's own resume of such a checkpoint trains an extra batch in epoch 0."""
    reference, _, _ = uninterrupted
    _crash_after_the_first_epoch(tmp_path)
    monkeypatch.setattr(lit_method, "continue_after_epoch_end", lambda checkpoint: None)
    batches = Batches()
    resumed = train(resume_config(tmp_path, "simclr", 1, *EPOCH_END_ONLY, "resume=last"), callbacks=[batches])
    assert batches.seen[0][:2] == (0, STEPS_PER_EPOCH)  # a ninth batch of an 8-batch epoch
    assert _load(resumed.checkpoint)["contrastkit"]["data_position"] != FINAL_POSITION
    with pytest.raises(AssertionError):
        assert_same_weights(_state(resumed.checkpoint), reference)


def test_extending_a_finished_max_steps_run_continues_its_last_epoch(tmp_path, uninterrupted):
    """A run's final checkpoint is written at the epoch end Lightning calls when max_steps stops it mid-epoch:
    resumed with more steps, the run continues that epoch after the batches it trained (not the next epoch)."""
    _, reference_batches, _ = uninterrupted
    longer = ("trainer.max_steps=23",)
    batches = Batches()
    train(resume_config(tmp_path / "long", "simclr", 1, *EPOCH_END_ONLY, *longer), callbacks=[batches])
    resumed_batches = Batches()
    train(resume_config(tmp_path / "short", "simclr", 1, *EPOCH_END_ONLY))
    extended = train(resume_config(tmp_path / "short", "simclr", 1, *EPOCH_END_ONLY, *longer, "resume=last"),
                     callbacks=[resumed_batches])  # fmt: skip
    assert batches.seen[:20] == reference_batches
    assert resumed_batches.seen == batches.seen[20:]
    assert [b[:2] for b in resumed_batches.seen] == [(2, 4), (2, 5), (2, 6)]
    assert _load(extended.checkpoint)["contrastkit"]["data_position"] == {"epoch": 2, "batches": 7}


def test_the_loop_counters_of_an_epoch_end_checkpoint_are_rewritten_and_others_left_alone(tmp_path):
    result = train(resume_config(tmp_path, "simclr", 1, "trainer.max_steps=8", "trainer.checkpoint_every_n_steps=0",
                                 "trainer.checkpoint_every_minutes=0"))  # fmt: skip
    checkpoint = _load(result.checkpoint)  # written at the end of epoch 0
    assert continue_after_epoch_end(checkpoint) == "next epoch"
    fit = checkpoint["loops"]["fit_loop"]
    assert fit["epoch_progress"]["current"]["completed"] == fit["epoch_progress"]["current"]["processed"] == 1
    assert fit["epoch_loop.batch_progress"]["current"]["ready"] == 0
    assert fit["epoch_loop.batch_progress"]["total"]["completed"] == STEPS_PER_EPOCH
    assert continue_after_epoch_end(checkpoint) is None  # already a between-epochs state: unchanged
    assert continue_after_epoch_end({"state_dict": {}}) is None  # no loops (an exported or foreign file)


# the loop fix is the same for every method: SimCLR on 1 and 2 processes in the suite; every method (MoCo's queue,
# DINO's teacher and centre) on 1 and 2 processes with CONTRASTKIT_FULL_KILL_MATRIX=1 (make bench)
@pytest.mark.parametrize(("method", "processes"), kill_matrix([("simclr", 1), ("simclr", 2)]))
def test_sigkill_after_an_epoch_end_checkpoint_then_resume_last_equals_the_uninterrupted_run(
    tmp_path, method, processes
):
    full, killed = tmp_path / "full", tmp_path / "killed"
    _ok(_launch(tmp_path, processes, str(full), method, str(processes), "0", *EPOCH_END_ONLY))
    kill_at = STEPS_PER_EPOCH + 3  # 3 steps into epoch 1; the newest checkpoint is the end of epoch 0
    died = _launch(tmp_path, processes, str(killed), method, str(processes), str(kill_at), *EPOCH_END_ONLY)
    assert died.returncode != 0  # SIGKILL: no handler ran, no interrupted.ckpt
    checkpoints = killed / "tiny" / "checkpoints"
    assert not (checkpoints / "interrupted.ckpt").exists() and not list(checkpoints.glob("step-*.ckpt"))
    assert _load(checkpoints / "last.ckpt")["global_step"] == STEPS_PER_EPOCH
    _ok(_launch(tmp_path, processes, str(killed), method, str(processes), "0", "resume", *EPOCH_END_ONLY))
    final = _load(checkpoints / "last.ckpt")
    assert final["global_step"] == 20 and final["contrastkit"]["data_position"] == FINAL_POSITION
    assert_same_weights(final["state_dict"], _state(full / "tiny" / "checkpoints" / "last.ckpt"))
