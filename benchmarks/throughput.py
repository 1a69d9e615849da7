"""The trainer's throughput as a fraction of the compute floor, in one invocation.

For a recipe (``simclr-fashion-mnist`` by default) and the same batch:

* **floor**: forward + backward + optimiser step of the recipe's method (backbone, heads, loss) on views already
  in memory (drawn once, before timing), in a bare loop, in the trainer's memory layout: the work no trainer can
  avoid;
* **floor + views**: the same loop drawing the views of each batch with the recipe's batched views engine;
* **contrastkit train**: ``contrastkit.train.train`` on the recipe (Lightning, logging, schedule, the data path;
  monitors and the final table off), images/s over the time spent in training epochs.

It prints images/s of each and the trainer's fraction of the floor (goal: >= 0.85 on CPU).

    python benchmarks/throughput.py                      # 40 steps of the recipe's batch
    python benchmarks/throughput.py --steps 100 --recipe byol-fashion-mnist
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import lightning.pytorch as pl
import torch

from contrastkit.data import load_dataset
from contrastkit.train.build_optimizer import build_optimizer
from contrastkit.train.config import load_config
from contrastkit.train.fit import train
from contrastkit.train.tasks import build_method, build_views


class StepTimer(pl.Callback):
    """Seconds and images of the training steps after the first ``skip`` (warm-up of allocators and caches)."""

    def __init__(self, skip: int) -> None:
        self.skip, self.images, self.start, self.seconds = skip, 0, None, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.skip and self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is not None:  # up to the end of the last step (not the epoch-end checkpoint)
            self.images += int(batch[0].shape[0])
            self.seconds = time.perf_counter() - self.start


def bare_loop(config, images: torch.Tensor, steps: int, skip: int, draw_views: bool) -> float:
    """Images/s of forward + backward + step in a plain loop (views drawn per step, or once before timing)."""
    torch.manual_seed(0)
    views = build_views(config, images.shape[1], images.shape[-1])
    method = build_method(config, in_chans=views.specs[0].channels)
    method.train()
    layout = torch.channels_last if config.trainer.channels_last else torch.contiguous_format
    method.to(memory_format=layout)  # the trainer's layout (trainer.channels_last)
    optimizer = build_optimizer(method, config.optim, config.data.batch_size)
    batch = config.data.batch_size

    def draw(chunk: torch.Tensor) -> list[torch.Tensor]:
        return [v.contiguous(memory_format=layout) for v in views.batch(chunk)]  # V x (B, C, S, S)

    fixed = draw(images[:batch])
    labels = None
    start, done = None, 0
    for step in range(skip + steps):
        if step == skip:
            start = time.perf_counter()
        chunk = images[(step * batch) % (len(images) - batch) :][:batch]
        out = method(draw(chunk) if draw_views else fixed, labels)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        method.before_optimizer_step()
        optimizer.step()
        method.after_optimizer_step()
        done += batch if step >= skip else 0
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="simclr-fashion-mnist")
    parser.add_argument("--steps", type=int, default=40, help="timed steps (after --skip untimed ones)")
    parser.add_argument("--skip", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            f"out_dir={tmp}",
            "name=throughput",
            f"trainer.max_steps={args.steps + args.skip}",
            "trainer.enable_progress_bar=false",
            "trainer.accelerator=cpu",
            "monitor.every_n_epochs=0",
            "final_eval.enabled=false",
        ]
        config = load_config(args.recipe, overrides)
        if config.method["name"] in ("supcon", "clip"):
            parser.error("labelled / image-text recipes are not supported by this benchmark yet")
        images = load_dataset(config.data.name, split="train").images
        floor = bare_loop(config, images, args.steps, args.skip, draw_views=False)
        with_views = bare_loop(config, images, args.steps, args.skip, draw_views=True)
        timer = StepTimer(args.skip)
        train(config, callbacks=[timer])
        trainer_rate = timer.images / timer.seconds
    print(
        f"# {args.recipe}: batch {config.data.batch_size}, {config.backbone.name}, {args.steps} timed steps; "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )
    print(f"{'':<36} {'images/s':>9} {'of floor':>9}")
    for name, rate in (
        ("floor (views in memory)", floor),
        ("floor + batched views", with_views),
        ("contrastkit train", trainer_rate),
    ):
        print(f"{name:<36} {rate:>9.1f} {rate / floor:>9.2f}")


if __name__ == "__main__":
    main()
