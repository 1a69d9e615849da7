"""Every method at the budget its recipe states: the built-in ``*-fashion-mnist`` recipes, scored as users score them.

Each recipe runs through ``contrastkit.train.train`` (exactly ``contrastkit train RECIPE``) for the epochs its
description states, on all 60,000 training images; its exported encoder is then scored with the full protocol of
benchmarks/full_protocol.py: weighted cosine kNN (k=200, T=0.1) of the 10,000 test images against the 60,000
training images, and a linear probe on the same frozen features. Raw pixels and the recipes' encoder at its random
initialisation are the floors. Minutes are the whole ``train`` call (data, training, export); images/s counts
training images over the time spent in training epochs.

    python benchmarks/methods.py                                  # every recipe at its stated budget
    python benchmarks/methods.py --methods simclr byol --epochs 1  # a subset, another budget
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

import contrastkit
from contrastkit.data import load_dataset
from contrastkit.train.config import list_recipes, load_config
from contrastkit.train.fit import train
from contrastkit.train.tasks import build_method, build_views, encoder_info
from full_protocol import encoder_scores, pixel_scores, training_overrides  # benchmarks/, beside this script
from quality import EpochTimer


def run(recipe: str, args, out_dir: Path, train_set, test_set) -> dict:
    config = load_config(recipe, training_overrides(out_dir, recipe, args.seed, args.epochs))
    timer = EpochTimer()
    start = time.perf_counter()
    train(config, callbacks=[timer])
    seconds = time.perf_counter() - start
    encoder = contrastkit.load_encoder(config.run_dir / "encoder.safetensors")
    knn, probe = encoder_scores(encoder, encoder.encoder_info, train_set, test_set)
    return {
        "recipe": recipe,
        "epochs": config.trainer.max_epochs,
        "knn": knn,
        "probe": probe,
        "minutes": seconds / 60,
        "images/s": timer.images / timer.seconds,
    }


def random_init(recipe: str, train_set, test_set) -> tuple[float, float]:
    """The recipe's backbone at its random initialisation (seed 0), scored the same way."""
    config = load_config(recipe)
    torch.manual_seed(config.seed)
    views = build_views(config, channels=1, image_size=28)
    backbone = build_method(config, in_chans=1).backbone.eval()
    return encoder_scores(backbone, encoder_info(config, views, 1), train_set, test_set)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help="default: each recipe's stated budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="*", default=None, help="recipe prefixes, e.g. simclr byol")
    parser.add_argument("--no-floors", action="store_true", help="leave out the raw-pixel and random-init rows")
    args = parser.parse_args()
    recipes = [r for r in list_recipes() if r.endswith("-fashion-mnist") and not r.startswith("clip")]
    if args.methods:
        recipes = [r for r in recipes if any(r.startswith(m) for m in args.methods)]
    train_set, test_set = load_dataset("fashion-mnist", split="train"), load_dataset("fashion-mnist", split="test")
    print(
        f"# Fashion-MNIST, each recipe at {'its stated budget' if args.epochs is None else f'{args.epochs} epochs'}; "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )
    print("# kNN (k=200, T=0.1): 10,000 test queries vs 60,000 training images; probe: logistic regression")
    header = f"{'':<28} {'epochs':>6} {'kNN top-1':>9} {'probe':>7} {'minutes':>8} {'images/s':>9}"
    print(header + "\n" + "-" * len(header), flush=True)
    if not args.no_floors:
        knn, probe = pixel_scores(train_set, test_set)
        print(f"{'raw pixels':<28} {'':>6} {knn:>9.4f} {probe:>7.4f}", flush=True)
        knn, probe = random_init(recipes[0], train_set, test_set)
        name = f"random init ({load_config(recipes[0]).backbone.name})"
        print(f"{name:<28} {'':>6} {knn:>9.4f} {probe:>7.4f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in recipes:
            r = run(recipe, args, Path(tmp), train_set, test_set)
            print(
                f"{recipe:<28} {r['epochs']:>6} {r['knn']:>9.4f} {r['probe']:>7.4f} {r['minutes']:>8.1f} "
                f"{r['images/s']:>9.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
