"""JPEG decode and resize per image, one thread: ``decode_image``'s libjpeg-turbo fast path against the Pillow path.

The images: ``--images`` ImageNet-like JPEGs (500 x 375 or 375 x 500, quality 90; random crops, scales and flips of
scikit-learn's two photographs, as ``benchmarks/feed.py`` makes them), held in memory, so reading files costs
nothing here. Rows, all in this one run, each the median of ``--repeats`` passes over every image:

- **Pillow** (the reference): ``Image.open(...).convert("RGB")`` -> uint8 ``(3, H, W)`` tensor, what
  ``contrastkit.data.decode_image.decode_image`` did for every file before the fast path;
- **decode_image**: today's function (Pillow reads the header, ``torchvision.io.decode_jpeg`` the pixels);
- **torchvision decode_jpeg alone**: the decoder with no header read and no checks, the floor of the fast path.

Every image's pixels from ``decode_image`` are checked equal to Pillow's before timing. Then bringing the decoded
images to 256 px: ``resize_center_crop`` (antialiased interpolation of the uint8 pixels as the decoder lays them
out) against the float interpolation of planes it replaced, with each one's largest and mean difference from
Pillow's own antialiased bilinear resize of the same image.

Last, photographs far larger than the training size (4000 x 3000, 2048 x 1536, 1024 x 768) brought to 256 px:
decoded whole, against ``decode_image(..., min_side=256)`` (libjpeg's DCT scaling to 1/2, 1/4 or 1/8 where the
shorter side stays >= 512), with the largest and mean difference of the 256-px results.

    python benchmarks/decode.py                  # 200 images, 5 passes
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.io import decode_jpeg

from contrastkit.data.decode_image import decode_image
from contrastkit.data.resize_center_crop import resize_center_crop
from gpu import make_jpegs

SIZE = 256  # simclr-imagenet's data.image_size


def pillow_decode(data: bytes) -> torch.Tensor:
    """The Pillow path: uint8 ``(3, H, W)``."""
    with Image.open(io.BytesIO(data)) as image:
        array = np.array(image.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def torchvision_decode(data: bytes) -> torch.Tensor:
    """``torchvision.io.decode_jpeg`` alone: uint8 ``(3, H, W)``."""
    return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))


def resized_shape(image: torch.Tensor) -> tuple[int, int, int, int]:
    """``(new height, new width, top, left)`` of resize_center_crop's shorter side to SIZE and centre crop."""
    _, h, w = image.shape
    scale = SIZE / min(h, w)
    nh, nw = max(SIZE, round(h * scale)), max(SIZE, round(w * scale))
    return nh, nw, (nh - SIZE) // 2, (nw - SIZE) // 2


def resize_float(image: torch.Tensor) -> torch.Tensor:
    """The baseline, resize_center_crop before 2026-12-06: float antialiased interpolation of planes, rounded."""
    nh, nw, top, left = resized_shape(image)
    x = F.interpolate(image[None].contiguous().float(), size=(nh, nw), mode="bilinear", antialias=True)
    return x[0, :, top : top + SIZE, left : left + SIZE].round().clamp(0, 255).to(torch.uint8)  # (3, SIZE, SIZE)


def resize_pillow(image: torch.Tensor) -> torch.Tensor:
    """The independent reference: Pillow's bilinear resize (antialiased when shrinking), same geometry."""
    nh, nw, top, left = resized_shape(image)
    array = np.asarray(Image.fromarray(image.permute(1, 2, 0).numpy()).resize((nw, nh), Image.BILINEAR))
    return torch.from_numpy(array[top : top + SIZE, left : left + SIZE].copy()).permute(2, 0, 1)


def ms_per_image(function: Callable[[object], object], items: list, repeats: int) -> float:
    """Median over ``repeats`` passes of the milliseconds per item."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            function(item)
        times.append((time.perf_counter() - start) / len(items))
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29's notice on its decoders
    jpegs = make_jpegs(args.images, seed=0)
    decoded = [pillow_decode(data) for data in jpegs]
    for data, expected in zip(jpegs, decoded, strict=True):
        assert torch.equal(decode_image(data, 3), expected), "decode_image differs from Pillow"
    print(f"# {args.images} JPEGs ~500x375 q90 in memory, 1 torch thread, median of {args.repeats} passes; "
          f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}")  # fmt: skip
    rows = {
        "Pillow open + convert RGB": ms_per_image(pillow_decode, jpegs, args.repeats),
        "decode_image (fast path)": ms_per_image(lambda d: decode_image(d, 3), jpegs, args.repeats),
        "torchvision decode_jpeg alone": ms_per_image(torchvision_decode, jpegs, args.repeats),
    }
    print(f"{'decode':<34} {'ms/image':>9} {'vs Pillow':>10}")
    pillow = rows["Pillow open + convert RGB"]
    for name, ms in rows.items():
        print(f"{name:<34} {ms:>9.2f} {pillow / ms:>9.2f}x")

    references = [resize_pillow(image) for image in decoded]
    print(f"\n{f'bring to {SIZE} px':<34} {'ms/image':>9} {'vs float':>10} {'vs Pillow resize: max, mean':>28}")
    float_ms = None
    as_decoded = [decode_image(data, 3) for data in jpegs]  # the decoder's memory: channels innermost
    for name, resize in (
        ("float planes (before)", resize_float),
        ("resize_center_crop (uint8, today)", lambda image: resize_center_crop(image, SIZE)),
    ):
        ms = ms_per_image(resize, as_decoded, args.repeats)
        float_ms = float_ms or ms
        diff = torch.cat(
            [(resize(x).int() - r.int()).abs().flatten() for x, r in zip(as_decoded, references, strict=True)]
        )
        print(f"{name:<34} {ms:>9.2f} {float_ms / ms:>9.2f}x {diff.max().item():>18d}, {diff.float().mean():.3f}")
    reduced_scale_rows(args.repeats)


def large_jpegs(size: tuple[int, int], count: int) -> list[bytes]:
    """``count`` photographs of ``size`` (width, height): scikit-learn's two, shifted crops brought up to the size,
    with a fine texture (noise of +-10 levels) so that what a reduced-scale decode loses shows."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        photo = load_sample_images().images[i % 2]
        top, left = int(rng.integers(0, 60)), int(rng.integers(0, 80))
        image = Image.fromarray(photo[top : top + 360, left : left + 540]).resize(size, Image.BICUBIC)
        noise = rng.integers(-10, 11, (size[1], size[0], 1))
        pixels = np.clip(np.asarray(image).astype(np.int16) + noise, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def reduced_scale_rows(repeats: int) -> None:
    """Large photographs to 256 px: decoded whole and resized, against decoded at a reduced scale (``min_side``)."""
    print(f"\n{'large JPEG to ' + str(SIZE) + ' px':<34} {'whole ms':>9} {'reduced ms':>11} {'speed-up':>9} "
          f"{'diff max, mean':>15}")  # fmt: skip
    for size in ((4000, 3000), (2048, 1536), (1024, 768)):
        jpegs = large_jpegs(size, 6)
        whole = ms_per_image(lambda d: resize_center_crop(decode_image(d, 3), SIZE), jpegs, repeats)
        reduced = ms_per_image(lambda d: resize_center_crop(decode_image(d, 3, min_side=SIZE), SIZE), jpegs, repeats)
        diff = torch.cat([
            (resize_center_crop(decode_image(d, 3), SIZE).int()
             - resize_center_crop(decode_image(d, 3, min_side=SIZE), SIZE).int()).abs().flatten()
            for d in jpegs
        ])  # fmt: skip
        print(f"{f'{size[0]} x {size[1]}':<34} {whole:>9.2f} {reduced:>11.2f} {whole / reduced:>8.2f}x "
              f"{diff.max().item():>9d}, {diff.float().mean():.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
