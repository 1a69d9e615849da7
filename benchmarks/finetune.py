"""Label efficiency: a contrastive encoder fine-tuned on few labels vs its linear probe vs the same network
trained from scratch on the same labels with the same budget.

The encoder is the demo-budget recipe's (``contrastkit train simclr-fashion-mnist``, 2 epochs, trained here unless
``--encoder`` names one). For each labels-per-class budget and each of ``--draws`` label draws (seeds 0, 1, ...),
``contrastkit.finetune`` draws the class-balanced labelled subset from the 60,000 training images and scores all
three classifiers on the 10,000 test images; the table gives mean and spread (sample standard deviation) over the
draws, and the fine-tuned encoder's gain over scratch and over its probe.

    python benchmarks/finetune.py                                  # 10 and 60 labels per class, 3 draws
    python benchmarks/finetune.py --encoder runs/demo/encoder.safetensors --labels 10 --draws 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from contrastkit.finetuning import FinetuneConfig, finetune
from contrastkit.train.config import load_config
from contrastkit.train.fit import train
from full_protocol import training_overrides  # benchmarks/, beside this script

RECIPE = "simclr-fashion-mnist"


def mean_spread(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default=None, help=f"an encoder file (default: train {RECIPE} here)")
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 60], help="labels per class")
    parser.add_argument("--draws", type=int, default=3, help="label draws (seeds 0, 1, ...)")
    parser.add_argument("--epochs", type=int, default=FinetuneConfig.epochs, help="fine-tuning and scratch epochs")
    args = parser.parse_args()
    print(
        f"# Fashion-MNIST label efficiency; {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        encoder = args.encoder
        if encoder is None:
            start = time.perf_counter()
            config = load_config(RECIPE, training_overrides(Path(tmp), "encoder", 0, None))
            train(config)
            encoder = config.run_dir / "encoder.safetensors"
            print(f"# encoder: {RECIPE}, {config.trainer.max_epochs} epochs, {time.perf_counter() - start:.0f} s")
        else:
            print(f"# encoder: {encoder}")
        print(f"# {args.epochs} epochs of fine-tuning / scratch training per run; test: 10,000 images")
        header = (
            f"{'labels/class':>12} {'scratch':>17} {'linear probe':>17} {'fine-tuned':>17} "
            f"{'FT - scratch':>13} {'FT - probe':>11} {'s/draw':>7}"
        )
        print(header + "\n" + "-" * len(header), flush=True)
        for n in args.labels:
            rows = []
            for seed in range(args.draws):
                start = time.perf_counter()
                config = FinetuneConfig(labels_per_class=n, seed=seed, epochs=args.epochs)
                result = finetune(encoder, "fashion-mnist", config)
                rows.append((result.scratch, result.linear_probe, result.finetuned, time.perf_counter() - start))
                print(f"#   {n}/class draw {seed}: scratch {rows[-1][0]:.4f} probe {rows[-1][1]:.4f} "
                      f"fine-tuned {rows[-1][2]:.4f}", flush=True)  # fmt: skip
            scratch, probe, tuned, seconds = ([r[i] for r in rows] for i in range(4))
            gain = statistics.mean(tuned) - statistics.mean(scratch)
            over_probe = statistics.mean(tuned) - statistics.mean(probe)
            print(
                f"{n:>12} {mean_spread(scratch):>17} {mean_spread(probe):>17} {mean_spread(tuned):>17} "
                f"{gain:>+13.4f} {over_probe:>+11.4f} {statistics.mean(seconds):>7.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
