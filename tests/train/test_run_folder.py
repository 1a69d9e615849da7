"""A mistyped command destroys nothing: an existing run folder is refused unless resume= or overwrite=true says
what to do, and a resume that cannot work is refused before any file is written."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest

from contrastkit.train.config import ConfigError
from contrastkit.train.fit import train
from contrastkit.train.interrupt import InterruptCheckpoint
from tests.train.helpers import tiny_config


def snapshot(run_dir) -> dict[str, str]:
    """Every file of the run folder and a hash of its bytes."""
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def finished(tmp_path):
    result = train(tiny_config(tmp_path, "trainer.max_epochs=1"))
    (result.run_dir / "checkpoints" / "interrupted.ckpt").write_bytes(result.checkpoint.read_bytes())
    return result


def test_the_same_command_twice_is_refused_and_the_first_run_is_kept(finished, tmp_path):
    before = snapshot(finished.run_dir)
    with pytest.raises(ConfigError, match=r"holds a run already .*resume=last.*overwrite=true.*name="):
        train(tiny_config(tmp_path, "trainer.max_epochs=1"))
    assert snapshot(finished.run_dir) == before


def test_overwrite_replaces_the_earlier_run_and_leaves_nothing_stale(finished, tmp_path):
    (finished.run_dir / "final_eval.json").write_text("{}")  # the earlier run's scores
    train(tiny_config(tmp_path, "trainer.max_epochs=1", "overwrite=true"))
    assert not (finished.run_dir / "final_eval.json").exists()  # this run has no final evaluation
    assert not (finished.run_dir / "checkpoints" / "interrupted.ckpt").exists()
    assert (finished.run_dir / "encoder.safetensors").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.projection_dim=16", r"method\.projection_dim \(32 -> 16\)"),
        ("backbone.name=small_cnn_wide", r"backbone\.name \('small_cnn' -> 'small_cnn_wide'\)"),
    ],
)
def test_a_resume_with_settings_that_cannot_change_is_refused_and_writes_nothing(finished, tmp_path, override, message):
    before = snapshot(finished.run_dir)
    with pytest.raises(ConfigError, match=rf"cannot change on resume: .*{message}"):
        train(tiny_config(tmp_path, "trainer.max_epochs=2", "resume=last", override))
    assert snapshot(finished.run_dir) == before


def test_a_resume_with_another_method_is_refused_and_writes_nothing(finished, tmp_path):
    before = snapshot(finished.run_dir)
    with pytest.raises(ConfigError, match=r"method\.name \('simclr' -> 'supcon'\)"):
        train(tiny_config(tmp_path, "resume=last", method="supcon"))
    assert snapshot(finished.run_dir) == before


def test_a_truncated_checkpoint_is_refused_by_name_and_nothing_is_replaced(finished, tmp_path):
    last = finished.run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    before = snapshot(finished.run_dir)
    with pytest.raises(ConfigError, match=r"last\.ckpt cannot be read as a checkpoint .*left as it was"):
        train(tiny_config(tmp_path, "trainer.max_epochs=2", "resume=last"))
    assert snapshot(finished.run_dir) == before


def test_a_run_that_trained_nothing_saves_no_interrupted_checkpoint(tmp_path, capsys):
    saved = []
    trainer = SimpleNamespace(
        global_step=7,
        save_checkpoint=lambda path, weights_only=None: saved.append(path),
        is_global_zero=True,
        datamodule=None,
        world_size=1,
    )
    callback = InterruptCheckpoint(tmp_path / "interrupted.ckpt")
    callback.on_exception(trainer, None, RuntimeError("failed while loading"))  # before training started
    callback.on_train_start(trainer, None)
    callback.on_exception(trainer, None, KeyboardInterrupt())  # started, no step taken yet
    trainer.global_step = 8
    callback.on_exception(trainer, None, KeyboardInterrupt())  # one step trained: worth keeping
    assert saved == [tmp_path / "interrupted.ckpt"]
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "contrastkit: training stopped by RuntimeError at step 7; no step to keep: start it again"
    assert err[-1] == (
        f"contrastkit: training interrupted at step 8; continue with the same command and "
        f"resume={tmp_path / 'interrupted.ckpt'}"
    )
