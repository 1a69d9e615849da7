"""SimCLR in your own training loop: contrastkit's views, backbone, head, loss and probes in ~100 lines of plain
PyTorch, on the 8x8 digits bundled with scikit-learn (1797 images, 10 classes; about a minute on two CPU cores).

Two random views of every image (``SimCLRViews.batch``: crops, jitter, blur, drawn for the whole batch at once) go
through a small CNN (``create_backbone("small_cnn")``) and an MLP projection (``ProjectionHead``) into the NT-Xent
loss (``InfoNCELoss``; Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations",
arXiv 2002.05709). Labels are never used in training. The encoder is then scored on the held-out split with the
library's probes (weighted cosine kNN, Wu et al. 2018, and a logistic-regression linear probe, both fitted on the
training split) next to the same encoder at its random initialisation and the raw 64 pixels.

    .venv/bin/python examples/simclr_digits.py --epochs 40 --seed 1 --out encoder.safetensors
    .venv/bin/python examples/simclr_digits.py --quick   # a few epochs, to check that it runs

``contrastkit train simclr-digits`` runs the same job through the trainer (checkpoints, logs, report).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import Tensor, nn

from contrastkit.backbones import create_backbone
from contrastkit.data import load_dataset
from contrastkit.eval import embed_images, knn_accuracy, linear_probe
from contrastkit.heads import ProjectionHead
from contrastkit.losses import InfoNCELoss
from contrastkit.views import SimCLRViews

IMAGE_SIZE = 16  # views are 16x16 crops of the 8x8 digits, so crops stay smooth
MEAN, STD = (0.5,), (0.5,)


def train_simclr(encoder: nn.Module, images: Tensor, epochs: int, batch_size: int, lr: float, seed: int) -> None:
    """SimCLR on uint8 ``images`` (N, 1, 8, 8): views, encoder, projection, NT-Xent, AdamW with a cosine schedule."""
    views = SimCLRViews(IMAGE_SIZE, 1, hflip_p=0.0, crop_scale=(0.3, 1.0), mean=MEAN, std=STD)  # digits are chiral
    head = ProjectionHead(encoder.feature_dim, 128, 64)
    loss_fn = InfoNCELoss(temperature=0.2)
    params = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    steps = epochs * (len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    generator = torch.Generator().manual_seed(seed)
    encoder.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            a, b = views.batch(images[order[start : start + batch_size]], generator)  # 2 x (B, 1, 16, 16)
            z = head(encoder(torch.cat([a, b])))  # (2B, 64)
            loss = loss_fn(*z.chunk(2))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if epoch % max(1, epochs // 5) == 0 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:>3}/{epochs}  loss {loss.item():.3f}")
    encoder.eval()


def evaluate(features, train, test, seed: int) -> dict[str, float]:
    """kNN (k=20, T=0.1) and linear-probe accuracy of ``features`` (a function of uint8 images) on the test split."""
    f_train, f_test = features(train.images), features(test.images)  # (N, D), (M, D)
    knn = knn_accuracy(f_train, train.targets, f_test, test.targets, k=20, temperature=0.1)
    probe = linear_probe(f_train, train.targets, f_test, test.targets, seed=seed)
    return {"knn": knn.top1, "linear": probe.accuracy}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Train, evaluate and print the comparison table; returns ``{row: {"knn": acc, "linear": acc}}``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 40, or 3 with --quick)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the views")
    parser.add_argument("--out", default=None, help="save the trained encoder here (contrastkit encoder file)")
    parser.add_argument("--quick", action="store_true", help="a few epochs only, to check that everything runs")
    args = parser.parse_args(argv)
    epochs = args.epochs or (3 if args.quick else 40)
    start = time.perf_counter()
    torch.manual_seed(args.seed)
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    print(f"digits: {len(train)} train / {len(test)} test images")
    encoder = create_backbone("small_cnn", in_chans=1)
    random_init = copy.deepcopy(encoder).eval()  # the same weights, never trained
    train_simclr(encoder, train.images, epochs, args.batch_size, args.lr, args.seed)
    if args.out:
        from contrastkit.backbones import save_encoder

        info = {"backbone": "small_cnn", "in_chans": 1, "input_size": IMAGE_SIZE, "mean": MEAN, "std": STD}
        print(f"saved the encoder to {save_encoder(encoder, args.out, info)} (contrastkit.load_encoder)")

    def embed(model: nn.Module):
        return lambda images: embed_images(model, images, MEAN, STD, IMAGE_SIZE)

    results = {
        "raw pixels": evaluate(lambda images: images.flatten(1).float(), train, test, args.seed),
        "random-init encoder": evaluate(embed(random_init), train, test, args.seed),
        "SimCLR encoder": evaluate(embed(encoder), train, test, args.seed),
    }
    print(f"\n{'representation':<22}{'kNN acc':<10}linear probe")
    for name, acc in results.items():
        print(f"{name:<22}{acc['knn']:<10.3f}{acc['linear']:.3f}")
    print(f"\ntook {time.perf_counter() - start:.1f} s (seed {args.seed}, {epochs} epochs)")
    return results


if __name__ == "__main__":
    main()
