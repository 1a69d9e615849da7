"""A tiny `contrastkit train` on a really full disk, for tests/train/test_checkpoint_io.py and benchmarks/faults.py.

Usage (inside a mount namespace where OUT_DIR is a small tmpfs, e.g. ``unshare -rm sh -c 'mount -t tmpfs -o size=2m
tmpfs DIR && python full_disk_run.py checkpoint DIR'``):

    python full_disk_run.py checkpoint OUT_DIR   # 2 MiB: the second write of last.ckpt does not fit
    python full_disk_run.py encoder OUT_DIR      # the disk is filled once training ends: encoder.safetensors fails

Prints the command's return code, its stderr, then one line of JSON: the run folder's files with their sizes and
whether last.ckpt loads (``torch.load(weights_only=True)``), since the tmpfs is gone once the namespace ends.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import lightning.pytorch as pl
import torch

from contrastkit.cli.main import main

TINY = ["name=r", "trainer.max_steps=3", "monitor.every_n_epochs=0", "final_eval.enabled=false",
        "data.num_workers=0", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]  # fmt: skip


class FillTheDisk(pl.Callback):
    """Once training has ended (its checkpoints written), fill the file system but for a few KiB."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_train_end(self, trainer, pl_module) -> None:
        free = shutil.disk_usage(self.folder).free
        with open(self.folder / "filler", "wb") as f, contextlib.suppress(OSError):
            f.write(b"\0" * max(free - 8192, 0))


def run(mode: str, out: Path) -> int:
    overrides = [f"out_dir={out}", *TINY]
    if mode == "checkpoint":
        return main(["train", "simclr-digits", *overrides])
    from contrastkit.train import fit

    original = fit.train
    # no clock checkpoint: nothing is written at train end before the encoder (checkpoint_every_minutes=0)
    overrides.append("trainer.checkpoint_every_minutes=0")
    fit.train = lambda config, callbacks=(): original(config, [*callbacks, FillTheDisk(out)])
    return main(["train", "simclr-digits", *overrides])


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = run(mode, out)
    last = out / "r" / "checkpoints" / "last.ckpt"
    try:
        loads = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    except Exception as e:
        loads = f"{type(e).__name__}: {e}"
    files = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    print(json.dumps({"rc": rc, "stderr": err.getvalue(), "files": files, "last_global_step": loads}))
    sys.stdout.flush()
    os._exit(0)
