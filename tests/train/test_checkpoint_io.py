"""Checkpoint files: written atomically; a full disk is one clear error and the previous checkpoint stays."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from contrastkit.cli.main import main
from contrastkit.train import checkpoint_io
from contrastkit.train.checkpoint_io import AtomicCheckpointIO


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_what_is_needed(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "global_step": 3}, path)
    before = path.read_bytes()

    def no_space(obj, f):
        f.write(b"x" * 100)  # part of the file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io.torch, "save", no_space)
    with pytest.raises(OSError) as raised:
        io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "global_step": 6}, path)
    error = raised.value
    assert error.errno == errno.ENOSPC and error.filename == str(path)
    assert f"about {len(before) / 2**20:.1f} MiB needed" in error.strerror and "MiB free" in error.strerror
    assert "the previous last.ckpt is untouched and loadable" in error.strerror and "resume=last" in error.strerror
    assert path.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))  # nothing half-written left
    monkeypatch.undo()
    assert io.load_checkpoint(path)["global_step"] == 3


def test_a_full_disk_during_training_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    def no_space(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed writing file "
                           "data/0: No space left on device")  # fmt: skip

    monkeypatch.setattr(checkpoint_io.torch, "save", no_space)
    overrides = [f"out_dir={tmp_path}", "name=full", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                 "monitor.every_n_epochs=0", "final_eval.enabled=false", "trainer.limit_train_batches=2",
                 "trainer.accelerator=cpu"]  # fmt: skip
    assert main(["train", "simclr-digits", *overrides]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("contrastkit train: error: no space left to write a checkpoint (about ")
    assert err[-1].endswith("last.ckpt)") and "Traceback" not in "\n".join(err)


REAL_SHORT_WRITE = "[enforce fail at inline_container.cc:672] . unexpected pos 669824 vs 669712"  # a 2 MiB tmpfs


def _short_write(obj, f):
    raise RuntimeError(REAL_SHORT_WRITE)


def test_torchs_real_short_write_message_is_a_full_disk_only_when_the_disk_is_short(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    checkpoint = {"state_dict": {"w": torch.zeros(100_000)}, "global_step": 6}  # 0.4 MB of tensors
    monkeypatch.setattr(checkpoint_io.torch, "save", _short_write)
    with pytest.raises(RuntimeError, match="unexpected pos"):  # space to spare: another fault, not relabelled
        io.save_checkpoint(checkpoint, path)
    free = SimpleNamespace(total=2 * 2**20, used=2 * 2**20 - 300_000, free=300_000)
    monkeypatch.setattr(checkpoint_io.shutil, "disk_usage", lambda folder: free)
    with pytest.raises(OSError) as raised:
        io.save_checkpoint(checkpoint, path)
    assert raised.value.errno == errno.ENOSPC and raised.value.strerror.startswith(
        "no space left to write a checkpoint (about 0.4 MiB needed, 0.3 MiB free); no last.ckpt was written"
    )
    assert not list(tmp_path.iterdir())  # no temporary left


def test_a_writer_error_raised_while_handling_enospc_is_a_full_disk(tmp_path, monkeypatch):
    def full(obj, f):  # what torch does on a full disk: its writer fails again while Python's OSError unwinds
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError(REAL_SHORT_WRITE)  # noqa: B904  (as torch does: the OSError is its __context__)

    monkeypatch.setattr(checkpoint_io.torch, "save", full)
    with pytest.raises(OSError, match="no space left to write a checkpoint"):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(10)}}, tmp_path / "last.ckpt")


def _tmpfs_run(tmp_path, mode: str, size: str) -> dict:
    """full_disk_run.py in its own mount namespace with ``tmp_path/disk`` a tmpfs of ``size`` (no root needed)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) for a small tmpfs without root")
    disk = tmp_path / "disk"
    disk.mkdir()
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"this machine allows no user-namespace tmpfs mount: {probe.stderr.strip()[:120]}")
    script = Path(__file__).with_name("full_disk_run.py")
    shell = 'mount -t tmpfs -o size="$1" tmpfs "$2" && exec "$3" "$4" "$5" "$2"'
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", shell, "sh", size, str(disk), sys.executable, str(script),
                           mode], capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_really_full_disk_stops_training_with_the_one_line_message(tmp_path):
    result = _tmpfs_run(tmp_path, "checkpoint", "2m")  # last.ckpt (1.1 MiB) fits once, not twice
    err = result["stderr"].strip().splitlines()
    assert result["rc"] == 1 and "Traceback" not in result["stderr"]
    assert err[-1].startswith("contrastkit train: error: no space left to write a checkpoint (about 1.1 MiB needed")
    assert "the previous last.ckpt is untouched and loadable" in err[-1] and err[-1].endswith("last.ckpt)")
    assert result["last_global_step"] == 3  # the checkpoint written before the disk filled loads
    assert not [f for f in result["files"] if f.endswith(".tmp") or f.endswith("interrupted.ckpt")]


def test_a_full_disk_when_the_encoder_is_written_says_how_to_write_it_later(tmp_path):
    result = _tmpfs_run(tmp_path, "encoder", "4m")  # training fits; the disk is filled before the encoder
    err = result["stderr"].strip().splitlines()
    assert result["rc"] == 1 and "Traceback" not in result["stderr"]
    assert err[-1].startswith("contrastkit train: error: no space left to write encoder.safetensors (about ")
    assert "contrastkit export" in err[-1] and "last.ckpt is kept" in err[-1]
    assert result["last_global_step"] == 3
    assert not [f for f in result["files"] if "encoder" in f]  # no half file, no temporary, no orphan .json
