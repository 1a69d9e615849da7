"""What a write killed half-way leaves behind is cleaned at the next start."""

from __future__ import annotations

from contrastkit.train.fit import train
from tests.train.helpers import tiny_config


def test_stale_temporary_checkpoints_are_removed_at_the_next_start(tmp_path):
    first = train(tiny_config(tmp_path, "trainer.max_epochs=1"))
    stale = first.run_dir / "checkpoints" / ".last.ckpt.abc123.tmp"  # what a kill during a write leaves
    stale.write_bytes(b"half a checkpoint")
    train(tiny_config(tmp_path, "trainer.max_epochs=2", "resume=last"))
    assert not stale.exists() and (first.run_dir / "checkpoints" / "last.ckpt").is_file()
