"""Tiny runs of SimCLR, MoCo (queue) and DINO (teacher, centre) with mid-epoch checkpoints, for the resume tests;
run as a script (one process, or under torchrun) it trains one and can SIGKILL itself at a given step.

Usage: python resume_runs.py OUT_DIR METHOD PROCESSES KILL_AT_STEP [resume | lose-rank-1] [KEY=VALUE ...]
(KILL_AT_STEP 0: never)

``resume`` adds ``resume=last``; ``lose-rank-1`` kills only process 1, and only in the job's first attempt (under
``torchrun --max-restarts``, the restarted job must then continue by itself). ``KEY=VALUE`` arguments are config
overrides, e.g. :data:`EPOCH_END_ONLY` (checkpoints at epoch ends only, a run that ends by ``max_steps``).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import lightning.pytorch as pl

from contrastkit.train.config import RunConfig, load_config

STEPS_PER_EPOCH = 8  # trainer.limit_train_batches
# only epoch-end checkpoints (as short runs with the default 15-minute clock have), and a run ended by max_steps
# (Lightning's iteration-based loop): 20 steps, the last 4 in epoch 2
EPOCH_END_ONLY = ("trainer.checkpoint_every_n_steps=0", "trainer.checkpoint_every_minutes=0", "trainer.max_epochs=3",
                  "trainer.max_steps=20")  # fmt: skip
METHODS: dict[str, dict[str, Any]] = {
    "simclr": {"name": "simclr", "hidden_dim": 64, "projection_dim": 32, "temperature": 0.5},
    "moco": {"name": "moco", "hidden_dim": 64, "projection_dim": 32, "temperature": 0.5, "queue_size": 256},
    "dino": {"name": "dino", "hidden_dim": 64, "bottleneck_dim": 32, "output_dim": 64, "teacher_temp": 0.04},
}


def resume_config(out_dir: Path, method: str, processes: int = 1, *overrides: str) -> RunConfig:
    """Two epochs of 8 steps of ``method`` on digits, a checkpoint every 3 steps (mid-epoch ones included)."""
    views = {"recipe": "dino", "num_local": 2} if method == "dino" else {"recipe": "simclr", "jitter_strength": 0.5}
    config = {
        "name": "tiny",
        "out_dir": str(out_dir),
        "seed": 0,
        "method": METHODS[method],
        "views": views,
        "backbone": {"name": "small_cnn"},
        "data": {"name": "digits", "batch_size": 64 // processes, "num_workers": 0},
        "optim": {"name": "adamw", "lr": 0.003, "warmup_epochs": 0.5},
        "trainer": {
            "max_epochs": 2,
            "devices": str(processes),
            "strategy": "ddp" if processes > 1 else "auto",
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "log_every_n_steps": 1,
            "checkpoint_every_n_steps": 3,
            "limit_train_batches": STEPS_PER_EPOCH,
        },
        "monitor": {"every_n_epochs": 0},
        "final_eval": {"enabled": False},
    }
    return load_config(config, list(overrides))


class KillAt(pl.Callback):
    """SIGKILLs this process before optimiser step ``step`` (only on process ``rank`` when given): no handler runs,
    nothing is saved on the way out."""

    def __init__(self, step: int, rank: int | None = None) -> None:
        self.step, self.rank = step, rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and self.rank in (None, trainer.global_rank):
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    from contrastkit.train.fit import train

    out, method, processes, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    mode = next((a for a in sys.argv[5:] if "=" not in a), "")
    extra = [a for a in sys.argv[5:] if "=" in a] + (["resume=last"] if mode == "resume" else [])
    first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
    kill = [KillAt(kill_at, 1 if mode == "lose-rank-1" else None)] if kill_at and first_attempt else []
    train(resume_config(out, method, processes, *extra), callbacks=kill)
    import torch.distributed as dist

    if dist.is_initialized():  # its threads end before the interpreter does (gloo aborted at exit once in many runs)
        dist.destroy_process_group()
