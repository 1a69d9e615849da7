"""``train()`` destroys the ``torch.distributed`` process group its DDP strategy started (Lightning never does), on
return and on failure, and leaves alone one the caller had started: a single process with world size 1 over gloo,
where Lightning's ``DDPStrategy`` initialises a real group exactly as under torchrun."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.distributed as dist

from contrastkit.train.fit import train
from tests.train.helpers import run_process_group, tiny_config

REPO = Path(__file__).resolve().parents[2]
# three runs in one torchrun script of 2 processes: each later one starts a new group on the same agent store.
# A worker that hangs ends itself (torchrun starts each in its own session: killing the launcher leaves it running)
RUNS = f"""
import faulthandler, sys
faulthandler.dump_traceback_later(90, exit=True)
sys.path.insert(0, {str(REPO)!r})
import torch.distributed as dist
from contrastkit.train.fit import train
from tests.train.helpers import tiny_config
for i in range(3):
    train(tiny_config(sys.argv[1], f"name=run{{i}}", "trainer.strategy=ddp", "trainer.devices=2",
                      "trainer.max_steps=2", "trainer.max_epochs=1", "data.batch_size=16"))
    print(f"run {{i}}: group alive {{dist.is_initialized()}}", flush=True)
"""


class _Fail(pl.Callback):
    """Fails the run once Lightning has set up its process group."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert dist.is_initialized()  # the failure below happens inside a live group
        raise RuntimeError("a failed run")


@pytest.fixture
def torchrun_env(monkeypatch) -> str:
    """The variables torchrun gives its one worker (world size 1, a free local port); the test process has no process
    group before or after (one a failing test left is destroyed, not handed to the next test)."""
    assert not dist.is_initialized()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    for name, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": "1", "RANK": "0",
                        "LOCAL_RANK": "0", "NODE_RANK": "0"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    yield f"tcp://127.0.0.1:{port}"
    if dist.is_initialized():
        dist.destroy_process_group()


def _ddp_config(out: Path):
    """Two steps of tiny SimCLR on a DDP strategy of one CPU device: Lightning starts a gloo group of one process."""
    return tiny_config(out, "trainer.strategy=ddp", "trainer.devices=1", "trainer.max_steps=2",
                       "trainer.max_epochs=1", "data.batch_size=32")  # fmt: skip


def test_train_destroys_the_process_group_its_ddp_strategy_started(tmp_path, torchrun_env):
    seen: dict[str, bool] = {}

    class Spy(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            seen["during"] = dist.is_initialized()

    result = train(_ddp_config(tmp_path), callbacks=[Spy()])
    assert seen == {"during": True}  # the run really had a group: its end is train()'s doing
    assert not dist.is_initialized()
    assert result.encoder is not None and result.encoder.is_file()  # rank 0's writes happened before the end


def test_train_destroys_the_process_group_when_the_run_fails(tmp_path, torchrun_env):
    with pytest.raises(RuntimeError, match="a failed run"):  # the run's own error, not one from the teardown
        train(_ddp_config(tmp_path), callbacks=[_Fail()])
    assert not dist.is_initialized()


@pytest.mark.parametrize("fails", [False, True], ids=["returns", "fails"])
def test_train_keeps_a_process_group_the_caller_started(tmp_path, torchrun_env, fails):
    dist.init_process_group("gloo", init_method=torchrun_env, rank=0, world_size=1)
    group = dist.group.WORLD
    if fails:
        with pytest.raises(RuntimeError, match="a failed run"):
            train(_ddp_config(tmp_path), callbacks=[_Fail()])
    else:
        train(_ddp_config(tmp_path))
    assert dist.is_initialized() and dist.group.WORLD is group  # the caller's own group, still usable
    total = torch.ones(1)
    dist.all_reduce(total)
    assert total.item() == 1.0


def test_later_runs_in_one_torchrun_script_start_their_own_groups(tmp_path):
    """Each run's group is destroyed, so the next starts one on torchrun's agent store, whose keys are still the
    earlier group's: on them (torch's own rendezvous) a run read a finished group's peer addresses and failed with
    "Connection refused", or hung (not every time: a race with the peer writing its new address)."""
    script = tmp_path / "runs.py"
    script.write_text(RUNS, encoding="utf-8")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = run_process_group([*torchrun, str(script), str(tmp_path / "runs")], env, tmp_path, timeout=120)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    # counted, not split in lines: the two processes' prints may interleave on the shared pipe
    assert [done.stdout.count(f"run {i}: group alive False") for i in range(3)] == [2, 2, 2], done.stdout[-3000:]
    assert all((tmp_path / "runs" / f"run{i}" / "encoder.safetensors").is_file() for i in range(3))
