"""SimCLR views per second: contrastkit's batched engine vs lightly's per-sample ``SimCLRTransform``, on the CPU.

Each pipeline makes 2 views of every image with SimCLR's recipe (Chen et al. 2020; the same parameters for all):
random resized crop (area 0.08-1, aspect 3/4-4/3), horizontal flip 0.5, colour jitter 0.8 x (0.8, 0.8, 0.8, 0.2),
grayscale 0.2, gaussian blur 0.5 with sigma in [0.1, 2] (contrastkit: kernel of 10% of the side, at least 3;
lightly: PIL's blur, no kernel limit), ImageNet normalisation. Measured in this one process:

* lightly: ``lightly.transforms.SimCLRTransform(input_size=size)`` called on PIL RGB images one by one, as a
  ``DataLoader`` worker would (one core: PIL is single-threaded);
* contrastkit per-sample: ``build_transform(spec)`` (torchvision v2) twice per PIL image, the same way, if
  ``contrastkit.views.sample_pipeline`` exists;
* contrastkit batched: ``apply_view(spec, images)`` twice on the whole uint8 batch, with ``--threads`` torch threads
  and with 1 thread.

Inputs are random uint8 images: RGB at 224 x 224; at 28 x 28 (Fashion-MNIST-sized) grayscale images, given to the
per-sample pipelines as PIL "RGB" (converted once, untimed: lightly's normalisation needs 3 channels) and to the
batched engine both as they are, (B, 1, 28, 28) repeated to 3 channels after the crop, and as (B, 3, 28, 28).
Images/s is the median over ``--repeats`` runs after a warm-up; ratios are against lightly in the same run.

    python benchmarks/views.py                       # 28 x 28 (4096 images) and 224 x 224 (512 images)
    python benchmarks/views.py --sizes 224 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import PIL.Image
import torch

from contrastkit.views.batched import apply_view
from contrastkit.views.view_spec import ViewSpec

BATCH = {28: 4096, 224: 512}  # images per batched call
PER_SAMPLE = {28: 1024, 224: 128}  # images per timed per-sample run


def simclr_spec(size: int) -> ViewSpec:
    """SimCLR's view at ``size`` with lightly's defaults (blur on at every size, kernel 10% of the side, >= 3)."""
    return ViewSpec(
        size=size,
        crop_scale=(0.08, 1.0),
        hflip_p=0.5,
        jitter_p=0.8,
        brightness=0.8,
        contrast=0.8,
        saturation=0.8,
        hue=0.2,
        grayscale_p=0.2,
        blur_p=0.5,
        blur_sigma=(0.1, 2.0),
        blur_kernel=max(3, size // 10 // 2 * 2 + 1),
    )


def images_per_second(run: Callable[[], object], n_images: int, repeats: int) -> float:
    """Median images/s of ``run`` (which processes ``n_images`` images) over ``repeats`` runs after a warm-up."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return n_images / statistics.median(times)


def measure(size: int, args: argparse.Namespace) -> list[tuple[str, str, float]]:
    """(pipeline, input, images/s) rows for one image size."""
    from lightly.transforms import SimCLRTransform

    n, n_ps = BATCH.get(size, 512), PER_SAMPLE.get(size, 128)
    spec = simclr_spec(size)
    rng = np.random.default_rng(0)
    channels = 1 if size <= 32 else 3
    batch = torch.from_numpy(rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8))
    pil = [PIL.Image.fromarray(batch[i].permute(1, 2, 0).squeeze(-1).numpy()).convert("RGB") for i in range(n_ps)]
    rows = []

    torch.set_num_threads(args.threads)
    lightly = SimCLRTransform(input_size=size)
    rows.append(
        (
            "lightly SimCLRTransform",
            "PIL RGB, 1 by 1",
            images_per_second(lambda: [lightly(im) for im in pil], n_ps, args.per_sample_repeats),
        )
    )
    try:
        from contrastkit.views.sample_pipeline import build_transform
    except ImportError:
        build_transform = None
    if build_transform is not None:
        transform = build_transform(spec)
        rate = images_per_second(lambda: [(transform(im), transform(im)) for im in pil], n_ps, args.per_sample_repeats)
        rows.append(("contrastkit per-sample (v2)", "PIL RGB, 1 by 1", rate))

    generator = torch.Generator().manual_seed(0)
    inputs = [(f"uint8 ({n}, {channels}, {size}, {size})", batch)]
    if channels == 1:
        inputs.append((f"uint8 ({n}, 3, {size}, {size})", batch.expand(n, 3, size, size).contiguous()))
    for threads in dict.fromkeys((args.threads, 1)):
        torch.set_num_threads(threads)
        for label, images in inputs:
            rate = images_per_second(
                lambda im=images: [apply_view(spec, im, generator) for _ in range(2)], n, args.repeats
            )
            rows.append((f"contrastkit batched, {threads} thread{'s' * (threads > 1)}", label, rate))
    torch.set_num_threads(args.threads)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 224])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the batched engine")
    parser.add_argument("--per-sample-repeats", type=int, default=3, help="timed runs of the per-sample pipelines")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()

    import lightly

    print("# SimCLR views: 2 views per image, images/s (higher is better)\n")
    print(
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
        f"torch {torch.__version__}, {args.threads} threads; lightly {lightly.__version__}\n"
    )
    print("| size | pipeline | input | images/s | × lightly |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        rows = measure(size, args)
        base = rows[0][2]
        for name, label, rate in rows:
            print(f"| {size} | {name} | {label} | {rate:,.0f} | {rate / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
