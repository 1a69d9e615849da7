"""Checkpoint files: written atomically; a full disk is one clear error and the previous checkpoint stays."""

from __future__ import annotations

import errno

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
