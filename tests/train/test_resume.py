"""A run interrupted and resumed ends with the same weights as an uninterrupted run."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from contrastkit.train.fit import train
from tests.train.helpers import tiny_config


class CrashAt(pl.Callback):
    """Raises in the middle of epoch ``epoch`` (a crash after some optimiser steps of that epoch)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise RuntimeError("simulated crash")


def _weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


METHOD_OVERRIDES = {
    "simclr": (),
    # a queue of negatives and an EMA key encoder: both must come back from the checkpoint
    "moco": ("method.queue_size=256",),
}


@pytest.mark.parametrize("method", sorted(METHOD_OVERRIDES))
def test_crash_then_resume_matches_uninterrupted_run(tmp_path, method):
    extra = METHOD_OVERRIDES[method]
    full = train(tiny_config(tmp_path / "full", "trainer.max_epochs=3", *extra, method=method))
    reference = _weights(full.checkpoint)

    crashed_config = tiny_config(tmp_path / "crash", "trainer.max_epochs=3", *extra, method=method)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(crashed_config, callbacks=[CrashAt(epoch=1, batch=3)])
    checkpoints = crashed_config.run_dir / "checkpoints"
    assert (checkpoints / "interrupted.ckpt").is_file()  # saved on the exception
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 0  # the crash left the end-of-epoch-0 checkpoint intact
    assert not list(checkpoints.glob("*.tmp"))  # no half-written file around

    resumed = train(tiny_config(tmp_path / "crash", "trainer.max_epochs=3", "resume=last", *extra, method=method))
    weights = _weights(resumed.checkpoint)
    logs = crashed_config.run_dir / "logs"
    assert (logs / "metrics.csv").is_file() and (logs / "resume-1" / "metrics.csv").is_file()  # nothing lost
    assert weights.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(weights[key], reference[key], rtol=1e-5, atol=1e-6, msg=f"{key} differs")
    # and the run really trained: weights moved away from the crash point's
    moved = _weights(checkpoints / "interrupted.ckpt")
    assert any(not torch.equal(moved[k], weights[k]) for k in weights if weights[k].is_floating_point())


def test_resume_restores_optimizer_and_schedule(tmp_path):
    config = tiny_config(tmp_path, "trainer.max_epochs=2")
    result = train(config)
    ckpt = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["optimizer_states"][0]["state"], "momentum buffers are saved"
    (scheduler,) = ckpt["lr_schedulers"]
    assert scheduler["last_epoch"] == ckpt["global_step"]  # a per-step schedule, saved where training stopped
    assert "rng" in ckpt["contrastkit"] and "info" in ckpt["contrastkit"]


def test_resume_from_missing_checkpoint_is_refused_before_training(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(tiny_config(tmp_path, "resume=last"))
    assert not (tmp_path / "tiny" / "config.json").exists()
