"""Two CPU processes (DDP over gloo, negatives gathered across them) follow the same loss curve as one process
on the same global batch."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.helpers import run_process_group

SCRIPT = Path(__file__).with_name("ddp_script.py")
GLOBAL_BATCH = 64


def _losses(run_dir: Path) -> list[float]:
    with open(run_dir / "logs" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    return [float(r["train/loss"]) for r in sorted(rows, key=lambda r: int(r["step"]))]


def _lrs(run_dir: Path) -> list[float]:
    with open(run_dir / "logs" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/lr")]
    return [float(r["train/lr"]) for r in sorted(rows, key=lambda r: int(r["step"]))]


def _run(args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    done = run_process_group(args, env, tmp_path)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")


def test_two_processes_follow_the_single_process_loss_curve(tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    _run([sys.executable, str(SCRIPT), str(single), "1", str(GLOBAL_BATCH)], tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    _run([*torchrun, str(SCRIPT), str(double), "2", str(GLOBAL_BATCH)], tmp_path)
    one, two = _losses(single / "tiny"), _losses(double / "tiny")
    assert len(one) == len(two) == 6
    assert one[0] != one[-1]  # the weights moved, so equal curves mean equal updates, not just an equal start
    for step, (a, b) in enumerate(zip(one, two, strict=True)):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5), f"step {step}: 1 process {a}, 2 processes {b}"
    # the schedule counts the steps the run takes (max_steps=6 ends it inside the first epoch) and the global
    # batch (2 x 32): base 0.1 x 64 / 256; the 0.5-epoch warm-up is cut to floor(10% of 6) = 0 steps
    expected = [0.1 * 64 / 256 * 0.5 * (1 + math.cos(math.pi * s / 6)) for s in range(6)]
    for lrs in (_lrs(single / "tiny"), _lrs(double / "tiny")):
        assert lrs == pytest.approx(expected, rel=1e-6)


def test_two_processes_with_grad_cache_follow_the_single_process_loss_curve(tmp_path):
    """GradCache over DDP: DDP's per-backward all-reduce is off, gradients are averaged once per step; the loss
    curve equals one process on the whole batch without gradient caching."""
    single, double = tmp_path / "single", tmp_path / "double"
    _run([sys.executable, str(SCRIPT), str(single), "1", str(GLOBAL_BATCH)], tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    _run([*torchrun, str(SCRIPT), str(double), "2", str(GLOBAL_BATCH), "12"], tmp_path)  # chunks of 12 of 32
    one, two = _losses(single / "tiny"), _losses(double / "tiny")
    assert len(one) == len(two) == 6 and one[0] != one[-1]
    for step, (a, b) in enumerate(zip(one, two, strict=True)):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5), f"step {step}: 1 process {a}, 2 processes + GradCache {b}"


@pytest.mark.parametrize("chunk", [0, 12])
def test_clip_on_two_processes_follows_the_single_process_loss_curve(tmp_path, chunk):
    """CLIP with images and captions gathered across 2 processes (and with GradCache) = 1 process, whole batch."""
    single, double = tmp_path / "single", tmp_path / "double"
    _run([sys.executable, str(SCRIPT), str(single), "1", str(GLOBAL_BATCH), "0", "clip"], tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    _run([*torchrun, str(SCRIPT), str(double), "2", str(GLOBAL_BATCH), str(chunk), "clip"], tmp_path)
    one, two = _losses(single / "tiny"), _losses(double / "tiny")
    assert len(one) == len(two) == 6 and one[0] != one[-1]
    for step, (a, b) in enumerate(zip(one, two, strict=True)):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5), f"step {step}: 1 process {a}, 2 processes {b}"


def test_two_nodes_on_one_machine_follow_the_single_process_loss_curve(tmp_path):
    """Two launchers on localhost, as two machines would run them (``torchrun --nnodes=2 --node-rank=R
    --master-addr=... --master-port=...``, one process each): the same loss curve as one process."""
    import socket

    single, nodes = tmp_path / "single", tmp_path / "nodes"
    _run([sys.executable, str(SCRIPT), str(single), "1", str(GLOBAL_BATCH)], tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    launchers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                f"--node-rank={rank}",
                "--nproc_per_node=1",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                str(SCRIPT),
                str(nodes),
                "2",
                str(GLOBAL_BATCH),
                "0",
                "simclr",
                "2",
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: killed whole if it hangs
        )
        for rank in (0, 1)
    ]
    try:
        for launcher in launchers:
            out, _ = launcher.communicate(timeout=300)
            assert launcher.returncode == 0, out[-4000:]
    finally:
        for launcher in launchers:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
    one, two = _losses(single / "tiny"), _losses(nodes / "tiny")
    assert len(one) == len(two) == 6 and one[0] != one[-1]
    for step, (a, b) in enumerate(zip(one, two, strict=True)):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5), f"step {step}: 1 process {a}, 2 nodes {b}"
