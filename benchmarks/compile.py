"""``trainer.compile=true`` (``torch.compile`` of the backbone, inductor) against eager, through ``contrastkit train``.

Two runs per row, same seed and data, each in this process: the ``simclr-fashion-mnist`` recipe (the small CNN at
28 px) and the same recipe with ResNet-18 at 64 px. Printed: training images/s after the first ``--skip`` steps (the
compiled run compiles during its first step: that time is printed apart), the ratio to eager, and the largest
difference of the training loss between the two runs at the first step (one forward: the compiled network's
numbers) and over the run (rounding differences then grow step by step, as any change of summation order does).
Inductor's compiled code is cached on disk (``/tmp/torchinductor_$USER``): a first compile takes ~20 s more.

    python benchmarks/compile.py                    # 30 timed steps per run
    python benchmarks/compile.py --steps 60
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from contrastkit.train.config import load_config
from contrastkit.train.fit import train
from throughput import StepTimer

ROWS = {
    "small CNN, 28 px": [],
    "ResNet-18, 64 px": ["backbone.name=resnet18", "views.input_size=64", "data.batch_size=64"],
}


class FirstStep(StepTimer):
    """:class:`StepTimer` that also times the first step (where a compiled run compiles)."""

    def __init__(self, skip: int) -> None:
        super().__init__(skip)
        self.first = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 0 and self.first is None:
            self.first = time.perf_counter()
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if isinstance(self.first, float) and trainer.global_step >= 1:
            self.first = time.perf_counter() - self.first  # seconds of the first step
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def losses(run_dir: Path) -> list[float]:
    with open(run_dir / "logs" / "metrics.csv") as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


def one_run(tmp: str, name: str, overrides: list[str], steps: int, skip: int) -> tuple[float, float, list[float]]:
    config = load_config("simclr-fashion-mnist", [
        f"out_dir={tmp}", f"name={name}", f"trainer.max_steps={steps + skip}", "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu", "trainer.log_every_n_steps=1", "monitor.every_n_epochs=0",
        "final_eval.enabled=false", "trainer.checkpoint_every_minutes=0", *overrides])  # fmt: skip
    timer = FirstStep(skip)
    result = train(config, callbacks=[timer])
    return timer.images / timer.seconds, timer.first, losses(result.run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run (after --skip untimed ones)")
    parser.add_argument("--skip", type=int, default=3)
    args = parser.parse_args()
    print(f"# trainer.compile vs eager, {args.steps} timed steps; {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}")  # fmt: skip
    print(f"{'row':<18} {'eager img/s':>11} {'compiled':>9} {'ratio':>6} {'1st step eager':>15} {'compiled':>9} "
          f"{'|loss diff| 1st':>13} {'largest':>12}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for i, (row, overrides) in enumerate(ROWS.items()):
            eager, eager_first, eager_loss = one_run(tmp, f"eager{i}", overrides, args.steps, args.skip)
            fast, fast_first, fast_loss = one_run(tmp, f"compiled{i}", [*overrides, "trainer.compile=true"],
                                                  args.steps, args.skip)  # fmt: skip
            drift = [abs(a - b) for a, b in zip(eager_loss, fast_loss, strict=True)]
            print(f"{row:<18} {eager:>11.1f} {fast:>9.1f} {fast / eager:>6.2f} {eager_first:>14.1f}s "
                  f"{fast_first:>8.1f}s {drift[0]:>13.2e} {max(drift):>12.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
