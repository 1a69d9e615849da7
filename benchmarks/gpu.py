"""One script for a machine with one GPU (under 8 minutes on an H100): the three numbers a CPU cannot give.

1. **InfoNCE at N = 65,536 pairs** (D = 128, temperature 0.1): forward + backward time and peak GPU memory of
   contrastkit's row-blocked ``InfoNCELoss`` next to lightly's ``NTXentLoss`` (which builds the 2N x 2N similarity
   matrix: 64 GiB at this N, so it may not fit; then the row says so).
2. **SimCLR ResNet-50 at 224 px, bf16 autocast**: training images/s of contrastkit's ``SimCLR`` method next to
   lightly's loop (torchvision ResNet-50, ``SimCLRProjectionHead``, ``NTXentLoss``), same batch, same SGD, views
   drawn once (the network's speed, not the data's).
3. **The GPU feed path**: a folder of ImageNet-like JPEGs (about 500 x 375, quality 90, made from scikit-learn's two
   photographs, no download) read by training's own loaders with ``data.num_workers``' default (the cores): with
   ``data.decode=device`` (the workers read the files; nvJPEG decodes each batch in one
   ``torchvision.io.decode_jpeg(device="cuda")`` call, the GPU brings them to 256 px) and with ``data.decode=workers``
   (libjpeg-turbo and the uint8 resize in the workers); SimCLR's two views by the batched views on the GPU either
   way: two-view pairs/s; next to PIL decode + lightly's per-sample SimCLR transform on one CPU core, the path most
   users have, and PIL's decode alone.

It prints one table and writes ``benchmarks/results/gpu.json`` (``--json``). Without a GPU it runs the same code on
the CPU; ``--tiny`` shrinks every size so that the test suite runs it end to end in seconds.

    python benchmarks/gpu.py            # on a GPU machine
    python benchmarks/gpu.py --tiny     # anywhere: a smoke run of every row
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"


@dataclass(frozen=True)
class Sizes:
    """What each row runs at."""

    loss_pairs: int  # N of the InfoNCE row (2N embeddings)
    backbone: str  # the SimCLR row's network
    image_size: int  # the SimCLR row's view side
    batch: int  # the SimCLR row's batch
    steps: int  # timed training steps (after 2 untimed)
    jpegs: int  # JPEGs of the feed row
    feed_batch: int  # JPEGs decoded together
    lightly_images: int  # images through lightly's per-sample CPU transform
    view_size: int  # side of the feed row's views


FULL = Sizes(65_536, "resnet50", 224, 256, 20, 4096, 256, 256, 224)
TINY = Sizes(256, "resnet18", 32, 8, 2, 12, 4, 4, 32)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``step`` after one warm-up call."""
    step()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_gib(step: Callable[[], object], device: torch.device) -> float | None:
    """Peak GPU memory of one ``step`` in GiB (None on the CPU, where benchmarks/losses.py measures it)."""
    if device.type != "cuda":
        step()
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    step()
    sync(device)
    return torch.cuda.max_memory_allocated(device) / 2**30


def loss_row(sizes: Sizes, device: torch.device) -> list[dict]:
    from lightly.loss import NTXentLoss

    from contrastkit.losses import InfoNCELoss

    torch.manual_seed(0)
    z_a = torch.randn(sizes.loss_pairs, 128, device=device, requires_grad=True)  # (N, D)
    z_b = torch.randn(sizes.loss_pairs, 128, device=device, requires_grad=True)  # (N, D)
    rows, label = [], f"InfoNCE N={sizes.loss_pairs}"
    for name, loss in (("contrastkit InfoNCELoss", InfoNCELoss(0.1)), ("lightly NTXentLoss", NTXentLoss(0.1))):

        def step(loss=loss) -> None:
            z_a.grad = z_b.grad = None
            loss(z_a, z_b).backward()

        try:
            seconds = timed(step, device, repeats=3)
            memory = peak_gib(step, device)
            rows.append({"row": label, "what": name, "ms": 1000 * seconds, "peak_gib": memory})
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            rows.append({"row": label, "what": name, "ms": None, "peak_gib": "out of memory"})
    return rows


def train_row(sizes: Sizes, device: torch.device) -> list[dict]:
    import torchvision
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from torch import nn

    from contrastkit.backbones import create_backbone
    from contrastkit.methods import SimCLR

    torch.manual_seed(0)
    views = [torch.randn(sizes.batch, 3, sizes.image_size, sizes.image_size, device=device) for _ in range(2)]
    ours = SimCLR(create_backbone(sizes.backbone)).to(device)
    trunk = getattr(torchvision.models, sizes.backbone)()
    width = trunk.fc.in_features
    trunk.fc = nn.Identity()
    head, criterion = SimCLRProjectionHead(width, 2048, 128), NTXentLoss(0.1)
    lightly_model = nn.ModuleDict({"backbone": trunk, "head": head}).to(device)
    dtype = torch.bfloat16

    def lightly_loss() -> torch.Tensor:
        z = [lightly_model["head"](lightly_model["backbone"](v)) for v in views]
        return criterion(*z)

    rows = []
    for name, model, loss_of in (
        ("contrastkit SimCLR", ours, lambda: ours(views).loss),
        ("lightly loop", lightly_model, lightly_loss),
    ):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(optimizer=optimizer, loss_of=loss_of) -> None:
            with torch.autocast(device.type, dtype=dtype):
                loss = loss_of()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        seconds = timed(step, device, repeats=sizes.steps)
        rows.append({"row": f"SimCLR {sizes.backbone} {sizes.image_size}px bf16, batch {sizes.batch}", "what": name,
                     "images_per_s": sizes.batch / seconds})  # fmt: skip
    return rows


def make_jpegs(count: int, seed: int = 0) -> list[bytes]:
    """ImageNet-like JPEGs (500 x 375 or 375 x 500, quality 90): random crops, scales and flips of scikit-learn's
    two photographs (china.jpg, flower.jpg, 427 x 640), encoded in memory."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(p) for p in load_sample_images().images]
    out = []
    for _ in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        scale = rng.uniform(0.6, 1.0)
        w, h = int(photo.width * scale), int(photo.height * scale)
        left, top = int(rng.integers(0, photo.width - w + 1)), int(rng.integers(0, photo.height - h + 1))
        size = (500, 375) if rng.random() < 0.7 else (375, 500)
        image = photo.crop((left, top, left + w, top + h)).resize(size, Image.BILINEAR)
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def feed_row(sizes: Sizes, device: torch.device) -> list[dict]:
    """Two-view pairs/s from a folder of JPEGs through training's own loaders, both places of ``data.decode``."""
    import tempfile

    from lightly.transforms import SimCLRTransform
    from PIL import Image

    from contrastkit.data.image_folder import ImageFolderDataset
    from contrastkit.data.labelled import FixedSizeImages
    from contrastkit.data.undecoded_jpegs import UndecodedJpegs, collate_undecoded, decode_undecoded
    from contrastkit.train.data_module import collate_images
    from contrastkit.train.data_workers import data_workers
    from contrastkit.views import SimCLRViews

    jpegs = make_jpegs(sizes.jpegs)
    views = SimCLRViews(input_size=sizes.view_size)
    generator = torch.Generator().manual_seed(0)  # as training draws them: on the CPU, applied on the device
    crop = sizes.view_size * 8 // 7  # 256 for 224: data.image_size, the side the views crop from
    workers = data_workers(None, None)  # data.num_workers' default on this machine: its cores

    def pairs_per_s(folder: ImageFolderDataset, on_device: bool) -> float:
        """A pass over the folder as training reads it (workers -> batch -> device -> views); the clock starts at
        the first batch, so starting the workers is not counted."""
        items = UndecodedJpegs(folder, crop, 3) if on_device else FixedSizeImages(folder, crop, 3)
        loader = torch.utils.data.DataLoader(
            items, batch_size=sizes.feed_batch, num_workers=workers, pin_memory=device.type == "cuda",
            collate_fn=collate_undecoded if on_device else collate_images)  # fmt: skip
        count, start = 0, None
        for batch in loader:
            if on_device:
                images = decode_undecoded(batch, device, crop, 3)[0]
            else:
                images = batch[0].to(device, non_blocking=True)
            views.batch(images, generator)
            if start is None:
                sync(device)
                start = time.perf_counter()
            else:
                count += len(images)
        sync(device)
        return count / (time.perf_counter() - start)

    where = "GPU" if device.type == "cuda" else "CPU"
    row = f"feed {len(jpegs)} JPEGs ~500x375 -> 2 views"
    with tempfile.TemporaryDirectory() as folder:
        for i, data in enumerate(jpegs):
            Path(folder, f"{i:05d}.jpg").write_bytes(data)
        images = ImageFolderDataset(folder, channels=3)
        rows = [
            {"row": row, "what": f"data.decode=device, {workers} workers, views on {where}",
             "pairs_per_s": pairs_per_s(images, on_device=True)},
            {"row": row, "what": f"data.decode=workers, {workers} workers, views on {where}",
             "pairs_per_s": pairs_per_s(images, on_device=False)},
        ]  # fmt: skip

    transform = SimCLRTransform(input_size=views.specs[0].size)

    def lightly_cpu() -> None:
        for data in jpegs[: sizes.lightly_images]:
            transform(Image.open(io.BytesIO(data)).convert("RGB"))

    def pil_floor() -> None:
        for data in jpegs[: sizes.lightly_images]:
            Image.open(io.BytesIO(data)).convert("RGB")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the per-sample path, one core, as one DataLoader worker runs it
    try:
        lightly_rate = sizes.lightly_images / timed(lightly_cpu, torch.device("cpu"), repeats=1)
        floor_rate = sizes.lightly_images / timed(pil_floor, torch.device("cpu"), repeats=1)
    finally:
        torch.set_num_threads(threads)
    rows.append({"row": row, "what": "lightly SimCLRTransform, 1 CPU core", "pairs_per_s": lightly_rate})
    rows.append({"row": row, "what": "PIL decode alone, 1 CPU core", "pairs_per_s": floor_rate})
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'row':<44} {'what':<40} {'result':>22}"]
    for r in rows:
        if "ms" in r:
            memory = r["peak_gib"] if isinstance(r["peak_gib"], str) else (
                "" if r["peak_gib"] is None else f", {r['peak_gib']:.2f} GiB")  # fmt: skip
            result = "out of memory" if r["ms"] is None else f"{r['ms']:.1f} ms{memory}"
        elif "images_per_s" in r:
            result = f"{r['images_per_s']:.1f} img/s"
        else:
            result = f"{r['pairs_per_s']:.1f} pairs/s"
        lines.append(f"{r['row']:<44} {r['what']:<40} {result:>22}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke run of every row (seconds, any CPU)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the numbers (default {RESULTS})")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sizes = TINY if args.tiny else FULL
    started = time.perf_counter()
    rows = loss_row(sizes, device) + train_row(sizes, device) + feed_row(sizes, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    result = {"date": time.strftime("%Y-%m-%d"), "device": name, "torch": torch.__version__, "tiny": args.tiny,
              "seconds": time.perf_counter() - started, "rows": rows}  # fmt: skip
    print(f"# {name}, torch {torch.__version__}, {result['seconds']:.0f} s")
    print(table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
