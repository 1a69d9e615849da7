"""Every method's kNN accuracy at a fixed budget: the built-in ``*-fashion-mnist`` recipes, same images and epochs.

Each recipe runs through ``contrastkit.train.train`` (exactly ``contrastkit train``) on the same fixed subset of
Fashion-MNIST for the same number of epochs, then the online monitor scores the backbone: weighted cosine kNN
(k=200, T=0.1) of the 10,000 test images against 10,000 training images, plus the health metrics. The same
small CNN at random initialisation is the floor. A short budget ranks how fast methods start learning, not where
they end: the papers' numbers take hundreds of epochs.

    python benchmarks/methods.py                          # 2 epochs on 20,000 images per method
    python benchmarks/methods.py --epochs 5 --images 60000 --methods simclr byol
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from contrastkit.train.config import list_recipes, load_config
from contrastkit.train.fit import train

MONITOR = ["monitor.bank_size=10000", "monitor.query_size=10000", "monitor.every_n_epochs=1"]


def run(recipe: str, args, out_dir: Path, extra: list[str]) -> tuple[dict[str, float], float]:
    config = load_config(
        recipe,
        [
            f"out_dir={out_dir}",
            f"name={recipe}",
            f"seed={args.seed}",
            f"trainer.max_epochs={args.epochs}",
            f"data.train_fraction={args.images / 60000}",
            "trainer.enable_progress_bar=false",
            "trainer.accelerator=cpu",
            "final_eval.enabled=false",
            *MONITOR,
            *extra,
        ],
    )
    start = time.perf_counter()
    result = train(config)
    return result.monitor[-1], time.perf_counter() - start


def floor(args) -> dict[str, float]:
    """The monitor's numbers for the SimCLR recipe's encoder at its random initialisation."""
    from types import SimpleNamespace

    from contrastkit.train.data_module import RunDataModule
    from contrastkit.train.fit import build_method, build_views
    from contrastkit.train.monitor import EmbeddingMonitor

    config = load_config("simclr-fashion-mnist", [f"seed={args.seed}", *MONITOR])
    torch.manual_seed(args.seed)
    data = RunDataModule(config.data, config.seed, config.monitor.bank_size, config.monitor.query_size)
    views = build_views(config, data.channels, data.image_size)
    method = build_method(config, in_chans=views.specs[0].channels)
    spec = views.specs[0]
    monitor = EmbeddingMonitor(config.monitor, data.bank, data.queries, None, spec.mean, spec.std, spec.size)
    return monitor.compute(SimpleNamespace(method=method, device=torch.device("cpu"), trainer=None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="*", default=None, help="recipe prefixes, e.g. simclr byol")
    args = parser.parse_args()
    recipes = [r for r in list_recipes() if r.endswith("-fashion-mnist")]
    if args.methods:
        recipes = [r for r in recipes if any(r.startswith(m) for m in args.methods)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("random init (small_cnn)", floor(args), 0.0))
        for recipe in recipes:
            metrics, seconds = run(recipe, args, Path(tmp), [])
            rows.append((recipe, metrics, seconds))
    print(
        f"# {args.images} Fashion-MNIST images x {args.epochs} epochs per method, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs; kNN k=200 on the 10,000 test images"
    )
    print(f"{'recipe':<28} {'kNN top-1':>9} {'kNN top-5':>9} {'std ratio':>9} {'RankMe':>7} {'seconds':>8}")
    for name, m, seconds in rows:
        print(
            f"{name:<28} {m['knn/top1']:>9.4f} {m['knn/top5']:>9.4f} {m['health/std_ratio']:>9.3f} "
            f"{m['health/rankme']:>7.1f} {seconds:>8.0f}"
        )


if __name__ == "__main__":
    main()
