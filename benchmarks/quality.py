"""Equal-budget quality: lightly's plain SimCLR loop vs ``contrastkit train`` with the recipe, in one invocation.

Both sides train the same network for the same epochs with the same views, loss and optimiser, all read from the
recipe (``simclr-fashion-mnist`` by default): its backbone, projection head widths, temperature, crop scale and
jitter strength, optimiser, learning rate (scaled to the batch as the recipe does), weight decay, warm-up + cosine
schedule, batch size and epochs.

* lightly 1.6, as a new user writes it from lightly's examples: ``SimCLRTransform`` per PIL image in DataLoader
  workers, ``SimCLRProjectionHead``, ``NTXentLoss``, a plain PyTorch loop (no Lightning);
* contrastkit: ``contrastkit.train.train`` on the recipe, exactly what ``contrastkit train RECIPE`` runs (batched
  views on the training device; the per-epoch monitor and the final table are off so that only training is timed).

Both encoders are then scored as a user scores them: weighted cosine kNN (k=200, T=0.1; Wu et al. 2018) with all
60,000 training images as the bank and the 10,000 test images as queries, and a linear probe (logistic regression,
its L2 strength chosen on a validation split) on the same frozen features. Training wall time is the time spent in
training epochs; images/s counts training images (each giving two views).

    python benchmarks/quality.py                              # the recipe at its stated budget
    python benchmarks/quality.py --epochs 1 --images 20000    # a quicker look
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from contrastkit.backbones import create_backbone
from contrastkit.data import load_dataset
from contrastkit.optim.warmup_cosine import WarmupCosine, plan_schedule
from contrastkit.train.config import RunConfig, load_config
from contrastkit.train.fit import train
from full_protocol import encoder_scores, training_overrides  # benchmarks/full_protocol.py, beside this script

LIGHTLY_INFO = {"mean": (0.5,), "std": (0.5,), "input_size": 28, "in_chans": 1}  # how lightly's views normalise


class EpochTimer(pl.Callback):
    """Seconds spent in training epochs and images trained on (contrastkit's side)."""

    def __init__(self) -> None:
        self.seconds, self.images = 0.0, 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.images += int(batch[0].shape[0])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds += time.perf_counter() - self.start


def run_contrastkit(config: RunConfig) -> tuple[nn.Module, float, int]:
    import contrastkit

    timer = EpochTimer()
    train(config, callbacks=[timer])
    return contrastkit.load_encoder(config.run_dir / "encoder.safetensors"), timer.seconds, timer.images


class PILImages(torch.utils.data.Dataset):
    """Fashion-MNIST as PIL images through lightly's transform (what lightly's examples do)."""

    def __init__(self, images: torch.Tensor, transform) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i, 0].numpy(), mode="L"))


def run_lightly(config: RunConfig, images: torch.Tensor, workers: int) -> tuple[nn.Module, float, int]:
    """lightly's SimCLR as a plain PyTorch loop, with the recipe's network, views, loss and optimiser."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform

    views, method, optim = config.views, config.method, config.optim
    lo, hi = views["crop_scale"]
    transform = SimCLRTransform(
        input_size=28,
        cj_prob=views["jitter_p"],
        cj_strength=views["jitter_strength"],
        cj_sat=0.0,  # grayscale: contrastkit's 1-channel views have no saturation, hue or grayscale either
        cj_hue=0.0,
        min_scale=lo,
        random_gray_scale=0.0,
        gaussian_blur=0.0,
        hf_prob=views["hflip_p"],
        normalize={"mean": [0.5], "std": [0.5]},
    )
    assert hi == 1.0, "lightly's SimCLRTransform crops up to the whole image"
    batch = config.data.batch_size
    loader = torch.utils.data.DataLoader(
        PILImages(images, transform), batch_size=batch, shuffle=True, drop_last=True, num_workers=workers
    )
    torch.manual_seed(config.seed)
    backbone = create_backbone(config.backbone.name, in_chans=1)
    head = SimCLRProjectionHead(backbone.feature_dim, method["hidden_dim"], method["projection_dim"])
    model = nn.Sequential(backbone, head)
    criterion = NTXentLoss(temperature=method["temperature"])
    lr = optim.lr * batch / 256
    if optim.name == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=optim.momentum, weight_decay=optim.weight_decay)
    plan = plan_schedule(optim.warmup_epochs, len(loader), 1, config.trainer.max_epochs)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, WarmupCosine(plan.warmup_steps, plan.total_steps, optim.min_lr_ratio)
    )
    model.train()
    seconds, seen = 0.0, 0
    for _ in range(config.trainer.max_epochs):
        start = time.perf_counter()
        for x0, x1 in loader:  # two views of each image
            loss = criterion(model(x0), model(x1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            seen += len(x0)
        seconds += time.perf_counter() - start
    return backbone.eval(), seconds, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="simclr-fashion-mnist")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's budget")
    parser.add_argument("--images", type=int, default=60000, help="training images (a fixed subset of the 60,000)")
    parser.add_argument("--workers", type=int, default=2, help="lightly's DataLoader workers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train_set, test_set = load_dataset("fashion-mnist", split="train"), load_dataset("fashion-mnist", split="test")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        overrides = training_overrides(tmp, "quality", args.seed, args.epochs)
        config = load_config(args.recipe, [*overrides, f"data.train_fraction={args.images / 60000}"])
        if config.method["name"] != "simclr":
            parser.error(f"--recipe must be a SimCLR recipe (lightly's side is SimCLR), got {config.method['name']}")
        # lightly trains on the same subset contrastkit draws (data.train_fraction with the same seed)
        subset = np.sort(np.random.default_rng(args.seed).permutation(60000)[: math.floor(args.images)])
        lightly = run_lightly(config, train_set.images[torch.as_tensor(subset)], args.workers)
        rows.append(("lightly 1.6 (plain loop)", *lightly))
        rows.append(("contrastkit train", *run_contrastkit(config)))
    print(
        f"# {args.recipe}: {args.images} images x {config.trainer.max_epochs} epoch(s), "
        f"batch {config.data.batch_size}, "
        f"{config.backbone.name}, {config.optim.name} lr {config.optim.lr}; {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; lightly workers {args.workers}"
    )
    print("# scored on all 10,000 test images against all 60,000 training images (kNN k=200, T=0.1) + linear probe")
    header = f"{'':<26} {'kNN top-1':>10} {'probe':>8} {'train s':>9} {'images/s':>9}"
    print(header + "\n" + "-" * len(header))
    results = []
    for name, encoder, seconds, images in rows:
        info = getattr(encoder, "encoder_info", LIGHTLY_INFO)
        knn, probe = encoder_scores(encoder, info, train_set, test_set)
        results.append((knn, probe, seconds, images / seconds))
        print(f"{name:<26} {knn:>10.4f} {probe:>8.4f} {seconds:>9.1f} {images / seconds:>9.1f}", flush=True)
    (lk, lp, ls, lr), (ck, cp, cs, cr) = results
    print(
        f"contrastkit / lightly: kNN {ck - lk:+.4f}, probe {cp - lp:+.4f}, training wall time {cs / ls:.2f}x, "
        f"images/s {cr / lr:.2f}x  (goal: kNN and probe >= lightly's, wall time <= 0.60x)"
    )


if __name__ == "__main__":
    main()
