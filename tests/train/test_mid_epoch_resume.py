"""Checkpoints on a step clock, and a resume from a mid-epoch checkpoint that continues the same stream of batches
and views: the weights equal an uninterrupted run's, for SimCLR, MoCo (queue) and DINO (teacher, centre)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from contrastkit.train.fit import train
from tests.train.helpers import kill_matrix, run_process_group
from tests.train.resume_runs import METHODS, resume_config
from tests.train.test_resume import CrashAt


def _state(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:  # weights, MoCo's queue and its pointer, DINO's teacher and centre: all in the state dict
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=f"{key} differs")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_crash_mid_epoch_resumes_from_the_step_checkpoint_on_the_same_stream(tmp_path, method):
    reference = _state(train(resume_config(tmp_path / "full", method)).checkpoint)

    crashed = resume_config(tmp_path / "crash", method)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(crashed, callbacks=[CrashAt(epoch=1, batch=5)])  # global step 13: last checkpoint at step 12
    checkpoints = crashed.run_dir / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 12 and last["contrastkit"]["data_position"] == {"epoch": 1, "batches": 4}
    # the newest two step snapshots are kept (keep_checkpoints=2), older ones removed; no temporary left
    assert sorted(p.name for p in checkpoints.glob("step-*.ckpt")) == ["step-0000009.ckpt", "step-0000012.ckpt"]
    assert not list(checkpoints.glob(".*.tmp"))

    resumed = train(resume_config(tmp_path / "crash", method, 1, "resume=last"))
    assert_same_weights(_state(resumed.checkpoint), reference)


def test_without_the_sampler_position_the_resumed_stream_would_differ(tmp_path):
    """The test above can fail: a resume that restarts the epoch's batches from the first ends elsewhere."""
    reference = _state(train(resume_config(tmp_path / "full", "simclr")).checkpoint)
    crashed = resume_config(tmp_path / "crash", "simclr")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(crashed, callbacks=[CrashAt(epoch=1, batch=5)])
    last = crashed.run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    del checkpoint["contrastkit"]["data_position"]  # as a loader that cannot resume would leave it
    torch.save(checkpoint, last)
    resumed = train(resume_config(tmp_path / "crash", "simclr", 1, "resume=last"))
    with pytest.raises(AssertionError):
        assert_same_weights(_state(resumed.checkpoint), reference)


SCRIPT = Path(__file__).with_name("resume_runs.py")
KILL_AT = 13  # global step 13 is mid-epoch 1 (8 steps per epoch); the newest checkpoint is step 12's


def _launch(tmp_path: Path, processes: int, *args: str, restarts: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        launcher += [f"--max-restarts={restarts}", "--monitor-interval=0.5"]
    command = [*launcher, str(SCRIPT), *args]
    return run_process_group(command, env, tmp_path)


def _ok(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, f"rc {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


@pytest.mark.parametrize(("method", "processes"), kill_matrix([(m, 1) for m in sorted(METHODS)] + [("simclr", 2)]))
def test_sigkill_mid_epoch_then_resume_last_equals_the_uninterrupted_run(tmp_path, method, processes):
    full, killed = tmp_path / "full", tmp_path / "killed"
    _ok(_launch(tmp_path, processes, str(full), method, str(processes), "0"))
    died = _launch(tmp_path, processes, str(killed), method, str(processes), str(KILL_AT))
    assert died.returncode != 0  # SIGKILL: no handler ran, no interrupted.ckpt
    checkpoints = killed / "tiny" / "checkpoints"
    assert not (checkpoints / "interrupted.ckpt").exists()
    assert torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)["global_step"] == 12
    _ok(_launch(tmp_path, processes, str(killed), method, str(processes), "0", "resume"))
    assert_same_weights(_state(checkpoints / "last.ckpt"), _state(full / "tiny" / "checkpoints" / "last.ckpt"))


def test_a_lost_worker_under_torchrun_max_restarts_resumes_the_job_by_itself(tmp_path):
    full, job = tmp_path / "full", tmp_path / "job"
    _ok(_launch(tmp_path, 2, str(full), "simclr", "2", "0"))
    done = _launch(tmp_path, 2, str(job), "simclr", "2", str(KILL_AT), "lose-rank-1", restarts=1)
    _ok(done)  # process 1 died at step 13; torchrun restarted both; the restarted job continued from step 12
    assert "restart 1 of this job (a worker was lost): continuing from" in done.stdout + done.stderr
    final = _state(job / "tiny" / "checkpoints" / "last.ckpt")
    assert_same_weights(final, _state(full / "tiny" / "checkpoints" / "last.ckpt"))
