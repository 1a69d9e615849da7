"""Inputs that cannot train are refused before training with one line (rc != 0, no traceback), and a run that failed
before its first step leaves nothing that blocks the corrected command; an earlier real run is never touched
(issue 27, items 8 and 9)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contrastkit.cli.main import main

TINY = ["name=run", "trainer.max_steps=2", "monitor.every_n_epochs=0", "final_eval.enabled=false",
        "data.num_workers=0", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]  # fmt: skip


@pytest.fixture(autouse=True)
def quiet_stale_log_handlers(monkeypatch):
    """Lightning's log handler may still write to an earlier test's captured stderr (closed since): logging then
    prints its own "--- Logging error ---" traceback, which is the test harness's, not the command's."""
    monkeypatch.setattr(logging, "raiseExceptions", False)


def _train(capsys, out: Path, *overrides: str) -> tuple[int, list[str]]:
    rc = main(["train", "simclr-digits", f"out_dir={out}", *TINY, *overrides])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err.strip().splitlines()


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


def _images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), mode="L").save(folder / f"ok{i:02d}.png")


def test_a_folder_of_only_corrupt_images_is_refused_before_training(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(37):
        (images / f"a{i:02d}.jpg").write_bytes(b"not a jpeg at all")
    (images / "a37.png").write_bytes(b"")  # an empty file too
    rc, err = _train(capsys, tmp_path / "runs", f"data.path={images}", "data.batch_size=8")
    assert rc != 0 and len([line for line in err if "error" in line]) == 1
    assert err[-1] == (
        f"contrastkit train: error: data.path={images}: none of the 38 images could be read "
        "(first: a00.jpg: UnidentifiedImageError: cannot identify image file)"
    )
    assert not (tmp_path / "runs").exists()  # nothing written: no run folder, no interrupted.ckpt
    for bad in images.iterdir():
        bad.unlink()
    _images(images, 16)  # the folder fixed: the same command trains (no overwrite=true needed)
    rc, err = _train(capsys, tmp_path / "runs", f"data.path={images}", "data.batch_size=8")
    assert rc == 0 and (tmp_path / "runs" / "run" / "encoder.safetensors").is_file()


def test_an_empty_folder_is_refused_by_name(tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "cats").mkdir(parents=True)
    (empty / ".DS_Store").write_bytes(b"\0")  # hidden: not an image
    rc, err = _train(capsys, tmp_path / "runs", f"data.path={empty}")
    assert rc != 0
    assert err[-1].startswith(f"contrastkit train: error: image folder {str(empty)!r} contains no image files")
    assert not (tmp_path / "runs").exists()


def test_a_run_that_failed_before_its_first_step_does_not_block_the_corrected_rerun(tmp_path, capsys):
    rc, err = _train(capsys, tmp_path, "data.batch_size=5000")  # digits has 1,438 training images
    assert rc != 0 and "fewer than one global batch (5000 x 1 processes)" in err[-1]
    assert "no step to keep: start it again" in "\n".join(err)
    assert not [p for p in (tmp_path / "run").rglob("*") if p.is_file()]  # no config.json, no logs left
    rc, err = _train(capsys, tmp_path)  # corrected, without overwrite=true
    assert rc == 0, err
    assert (tmp_path / "run" / "encoder.safetensors").is_file()


def test_leftovers_of_a_killed_start_do_not_block_but_an_earlier_run_still_does(tmp_path, capsys):
    killed = tmp_path / "run"
    (killed / "logs").mkdir(parents=True)  # what a start SIGKILLed before its first step leaves
    (killed / "checkpoints").mkdir()
    (killed / "checkpoints" / ".last.ckpt.x1y2.tmp").write_bytes(b"half")
    (killed / "config.json").write_text("{}")
    (killed / "notes.txt").write_text("mine")  # not a run output: left alone
    rc, err = _train(capsys, tmp_path)
    assert rc == 0, err
    assert (killed / "notes.txt").read_text() == "mine" and not list((killed / "checkpoints").glob("*.tmp"))
    before = _digest(killed)
    rc, err = _train(capsys, tmp_path, "trainer.max_steps=3")  # now a real run is there: refused, untouched
    assert rc != 0 and "holds a run already" in err[-1]
    assert _digest(killed) == before


@pytest.mark.parametrize("metrics", ["logs/metrics.csv", "tensorboard/events.out.tfevents.1"])
def test_a_folder_with_the_logs_of_a_run_is_a_run(tmp_path, capsys, metrics):
    """A run killed before its first checkpoint still has its logged metrics: they are not leftovers."""
    (tmp_path / "run" / metrics).parent.mkdir(parents=True)
    (tmp_path / "run" / metrics).write_text("step,train/loss\n0,4.1\n")
    (tmp_path / "run" / "config.json").write_text("{}")
    before = _digest(tmp_path / "run")
    rc, err = _train(capsys, tmp_path)
    assert rc != 0 and "holds a run already" in err[-1]
    assert _digest(tmp_path / "run") == before
