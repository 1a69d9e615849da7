"""SimCLR on Fashion-MNIST, contrastkit vs lightly, in one invocation: training images/s and kNN / linear probe.

Both sides train the same network (contrastkit's ``SmallCNN`` on 3-channel 28x28 views, a 2-layer 512-wide
projection head to 128, NT-Xent at temperature 0.5) with the same recipe (SGD lr 0.06 x batch/256, momentum 0.9,
weight decay 5e-4, cosine schedule; crop area 0.2-1, flip 0.5, colour jitter 0.5 strength p 0.8, grayscale 0.2,
no blur, ImageNet normalisation), the same batch, the same images and the same number of epochs, both on Lightning:

* contrastkit: ``contrastkit.train.train`` with the ``simclr-fashion-mnist`` recipe (batched views on the
  training device, blocked log-sum-exp loss), exactly what ``contrastkit train`` runs;
* lightly 1.6: ``SimCLRTransform`` per image in ``DataLoader`` workers, ``SimCLRProjectionHead``, ``NTXentLoss``
  in a ``LightningModule`` as in lightly's examples.

Images/s counts training images (each giving 2 views) over the time spent in training epochs. The encoders are then
scored the same way: weighted cosine kNN (k=200, T=0.1; Wu et al. 2018) and a linear probe, features of the
held-out test images against a fixed subset of training images.

    python benchmarks/train.py                         # 1 epoch on 20,000 images, then the evaluation
    python benchmarks/train.py --epochs 3 --images 60000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from contrastkit.backbones import SmallCNN
from contrastkit.data import load_dataset
from contrastkit.eval import knn_accuracy, linear_probe
from contrastkit.eval.embed_images import embed_images
from contrastkit.train.config import load_config
from contrastkit.train.fit import train
from contrastkit.views.view_spec import IMAGENET_MEAN, IMAGENET_STD

BATCH, LR, WD, TEMPERATURE = 256, 0.06, 5e-4, 0.5


class EpochTimer(pl.Callback):
    """Seconds spent in training epochs and images seen (same callback on both sides)."""

    def __init__(self) -> None:
        self.seconds, self.images = 0.0, 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        first = batch[0]
        self.images += int(first[0].shape[0] if isinstance(first, (list, tuple)) else first.shape[0])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds += time.perf_counter() - self.start


def run_contrastkit(args, out_dir: Path) -> tuple[nn.Module, EpochTimer]:
    config = load_config(
        "simclr-fashion-mnist",
        [
            f"out_dir={out_dir}",
            "name=contrastkit",
            f"seed={args.seed}",
            f"trainer.max_epochs={args.epochs}",
            f"data.train_fraction={args.images / 60000}",
            "views.channels=3",
            "trainer.enable_progress_bar=false",
            "trainer.accelerator=cpu",
            "monitor.every_n_epochs=0",
            "final_eval.enabled=false",
        ],
    )
    timer = EpochTimer()
    train(config, callbacks=[timer])
    import contrastkit

    return contrastkit.load_encoder(out_dir / "contrastkit" / "encoder.safetensors"), timer


class LightlySimCLR(pl.LightningModule):
    """lightly's SimCLR example module, with our SmallCNN and the recipe above."""

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        self.backbone = SmallCNN(in_chans=3)
        self.projection_head = SimCLRProjectionHead(128, 512, 128)
        self.criterion = NTXentLoss(temperature=TEMPERATURE)
        self.total_steps = total_steps

    def training_step(self, batch, batch_idx):
        (x0, x1), _ = batch
        z0 = self.projection_head(self.backbone(x0))
        z1 = self.projection_head(self.backbone(x1))
        loss = self.criterion(z0, z1)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=LR * BATCH / 256, momentum=0.9, weight_decay=WD)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.total_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class PILDataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, transform) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        image = Image.fromarray(self.images[i, 0].numpy(), mode="L").convert("RGB")
        return self.transform(image), 0


def run_lightly(args, images: torch.Tensor) -> tuple[nn.Module, EpochTimer]:
    from lightly.transforms import SimCLRTransform

    transform = SimCLRTransform(input_size=28, cj_strength=0.5, min_scale=0.2, gaussian_blur=0.0)
    loader = torch.utils.data.DataLoader(
        PILDataset(images, transform),
        batch_size=BATCH,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
    )
    torch.manual_seed(args.seed)
    model = LightlySimCLR(total_steps=len(loader) * args.epochs)
    timer = EpochTimer()
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, loader)
    return model.backbone.eval(), timer


def scores(encoder: nn.Module, train_x, train_y, test_x, test_y) -> tuple[float, float]:
    def feats(x):
        return embed_images(encoder, x.expand(-1, 3, -1, -1), IMAGENET_MEAN, IMAGENET_STD, 28)

    f_train, f_test = feats(train_x), feats(test_x)
    knn = knn_accuracy(f_train, train_y, f_test, test_y, k=200, temperature=0.1)
    probe = linear_probe(f_train, train_y, f_test, test_y)
    return knn.top1, probe.accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=20000, help="training images (a fixed subset of the 60,000)")
    parser.add_argument("--workers", type=int, default=2, help="lightly's DataLoader workers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train_set, test_set = load_dataset("fashion-mnist", split="train"), load_dataset("fashion-mnist", split="test")
    with tempfile.TemporaryDirectory() as tmp:
        ck_encoder, ck = run_contrastkit(args, Path(tmp))
    # lightly trains on the same subset contrastkit drew (data.train_fraction with the same seed)
    rng = np.random.default_rng(args.seed)
    subset = np.sort(rng.permutation(60000)[: int(np.floor(60000 * args.images / 60000))])
    lt_encoder, lt = run_lightly(args, train_set.images[torch.as_tensor(subset)])
    bank = torch.as_tensor(np.random.default_rng(1).permutation(60000)[:10000])
    train_x, train_y = train_set.images[bank], train_set.targets[bank]
    test_x, test_y = test_set.images, test_set.targets
    rows = [("lightly 1.6", lt, *scores(lt_encoder, train_x, train_y, test_x, test_y))]
    rows.append(("contrastkit", ck, *scores(ck_encoder, train_x, train_y, test_x, test_y)))
    base = rows[0][1].images / rows[0][1].seconds
    print(
        f"# SimCLR on Fashion-MNIST: {args.images} images x {args.epochs} epoch(s), batch {BATCH}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )
    print(f"{'':<14} {'images/s':>9} {'vs lightly':>11} {'kNN top-1':>10} {'linear probe':>13}")
    for name, timer, knn, probe in rows:
        rate = timer.images / timer.seconds
        print(f"{name:<14} {rate:>9.1f} {rate / base:>10.2f}x {knn:>10.4f} {probe:>13.4f}")


if __name__ == "__main__":
    main()
