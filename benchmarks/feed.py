"""Feeding training at real resolution: a folder of ImageNet-like JPEGs to SimCLR's two 224-px views, decode included.

The folder: ``--images`` JPEGs (default 10,000) of about 500 x 375 at quality 90, random crops, scales and flips of
the two photographs that ship with scikit-learn (made once, no download; ``--folder`` keeps them). Rows, all in this
one run, counted as finished two-view pairs per second:

- **contrastkit**: the data path of ``contrastkit train simclr-imagenet data.path=FOLDER`` (``ImageFolderDataset``
  -> images brought to ``data.image_size`` 256 in the DataLoader workers -> uint8 batches -> SimCLR's batched views
  on the training device), with 0 workers (everything in one process: the cost per core) and 1 and 2 workers
  (the views in the main process, as training runs them on a CPU-only machine);
- **lightly**: lightly's ``SimCLRTransform`` (PIL decode + per-sample torchvision) in a torch DataLoader, 0 / 1 / 2
  workers, as lightly's examples run it;
- **contrastkit, prepared shards**: the same training path reading the folder after ``contrastkit prepare FOLDER
  --out SHARDS`` (tar shards of the images already at 256 px, JPEG quality 95): ``data.path=SHARDS`` streams them
  (``WebDatasetShards`` -> ``ShardEpochs``), each epoch decodes a 256-px JPEG and resizes nothing. ``prepare`` runs
  once (its time is printed: what the cache costs, paid back by the epochs after);
- **PIL decode alone**: ``PIL.Image.open(...).convert("RGB")`` of every file, one process: the floor of a path that
  decodes with PIL at full size.

Then what each stage of our path costs per image, in one process: read the file, decode, bring to 256 px, collate,
views. ``per core`` divides by the processes working (workers, plus the main process when it draws the views).

    python benchmarks/feed.py                      # 10,000 JPEGs (made in ~1 min, 0.5 GB in --folder)
    python benchmarks/feed.py --images 2000 --batches 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from contrastkit.data import ImageFolderDataset
from contrastkit.data.decode_image import decode_image
from contrastkit.data.labelled import FixedSizeImages
from contrastkit.data.prepare_shards import PrepareSettings, prepare_shards
from contrastkit.data.resize_center_crop import resize_center_crop
from contrastkit.data.shard_epochs import ShardEpochs
from contrastkit.data.webdataset_shards import WebDatasetShards
from contrastkit.train.data_module import collate_images
from contrastkit.views import SimCLRViews
from gpu import make_jpegs

IMAGE_SIZE = 256  # simclr-imagenet's data.image_size
VIEW_SIZE = 224


def make_folder(folder: Path, count: int) -> Path:
    """``count`` JPEGs in ``folder`` (kept: made again only when missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.jpg")))
    if have < count:
        for start in range(have, count, 500):
            for i, data in enumerate(make_jpegs(min(500, count - start), seed=start)):
                (folder / f"img{start + i:06d}.jpg").write_bytes(data)
    return folder


def prepared(folder: Path) -> tuple[Path, float]:
    """``contrastkit prepare`` of the folder at 256 px (made once beside it, kept); its folder and seconds."""
    out = folder.with_name(f"{folder.name}-prepared-{IMAGE_SIZE}")
    summary = out / "prepare.json"
    if not summary.is_file():
        prepare_shards(folder, out, PrepareSettings(IMAGE_SIZE, 95, 1000, workers=os.cpu_count() or 1))
    return out, json.loads(summary.read_text())["seconds"]


def ours(
    folder: Path, workers: int, batch: int, batches: int, views_here: bool = True, shards: Path | None = None
) -> float:
    """Pairs/s of our data path with ``workers`` DataLoader workers, views drawn in this process (``views_here``
    False: the CPU's part when the views run on the accelerator, batches of uint8 images ready to transfer); from
    the prepared ``shards`` when given, as ``data.path=SHARDS`` streams them."""
    if shards is None:
        dataset = FixedSizeImages(ImageFolderDataset(str(folder), channels=3), IMAGE_SIZE, 3)
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, collate_fn=collate_images,
                            generator=torch.Generator().manual_seed(0))  # fmt: skip
    else:
        stream = WebDatasetShards(sorted(str(p) for p in shards.glob("*.tar")), channels=3)
        epochs = ShardEpochs(stream, batches + 1, batch, IMAGE_SIZE, 3)
        epochs.set_epoch(0)
        loader = DataLoader(epochs, batch_size=batch, num_workers=workers, collate_fn=collate_images)
    views, generator = SimCLRViews(VIEW_SIZE), torch.Generator().manual_seed(0)
    done, start = 0, None
    for step, (images, _, _) in enumerate(loader):
        if step == 1:  # the first batch waits for the workers to start
            start, done = time.perf_counter(), 0
        if views_here:
            views.batch(images, generator)
        done += len(images)
        if step == batches:
            break
    return done / (time.perf_counter() - start)


class _LightlyFolder(torch.utils.data.Dataset):
    def __init__(self, files: list[Path]) -> None:
        from lightly.transforms import SimCLRTransform

        self.files, self.transform = files, SimCLRTransform(input_size=VIEW_SIZE)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        return self.transform(Image.open(self.files[i]).convert("RGB"))


def lightly(folder: Path, workers: int, batch: int, batches: int) -> float:
    """Pairs/s of lightly's per-sample SimCLR transform in a torch DataLoader."""
    files = sorted(folder.glob("*.jpg"))
    loader = DataLoader(_LightlyFolder(files), batch_size=batch, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    done, start = 0, None
    for step, pair in enumerate(loader):
        if step == 1:
            start, done = time.perf_counter(), 0
        done += len(pair[0])
        if step == batches:
            break
    return done / (time.perf_counter() - start)


def pil_floor(folder: Path, count: int) -> float:
    files = sorted(folder.glob("*.jpg"))[:count]
    start = time.perf_counter()
    for path in files:
        with Image.open(path) as image:
            image.convert("RGB")
    return len(files) / (time.perf_counter() - start)


def stages(folder: Path, count: int, batch: int) -> dict[str, float]:
    """Milliseconds per image of each stage of our path, in one process."""
    files = sorted(folder.glob("*.jpg"))[:count]
    ms: dict[str, float] = {}
    start = time.perf_counter()
    raw = [path.read_bytes() for path in files]
    ms["read"] = time.perf_counter() - start
    start = time.perf_counter()
    decoded = [decode_image(data, 3) for data in raw]
    ms["decode"] = time.perf_counter() - start
    start = time.perf_counter()
    sized = [resize_center_crop(image, IMAGE_SIZE) for image in decoded]
    ms[f"bring to {IMAGE_SIZE} px"] = time.perf_counter() - start
    start = time.perf_counter()
    batches = [torch.stack(sized[i : i + batch]) for i in range(0, len(sized), batch)]
    ms["collate"] = time.perf_counter() - start
    views, generator = SimCLRViews(VIEW_SIZE), torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for images in batches:
        views.batch(images, generator)
    ms["two views"] = time.perf_counter() - start
    return {name: 1000 * seconds / len(files) for name, seconds in ms.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/contrastkit-feed-jpegs"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=12, help="timed batches per row (after one untimed)")
    args = parser.parse_args()
    folder = make_folder(args.folder, args.images)
    torch.set_num_threads(1)  # per core means per core: the batched views in one thread, as each worker runs
    threads = torch.get_num_threads()
    print(f"# {args.images} JPEGs ~500x375 q90 -> 2 x {VIEW_SIZE} px SimCLR views; batch {args.batch}, "
          f"{args.batches} timed batches; {os.cpu_count()} CPUs, {threads} torch threads, "
          f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}")  # fmt: skip
    shards, prepare_seconds = prepared(folder)
    print(f"# contrastkit prepare: {args.images} images to 256-px shards in {prepare_seconds:.1f} s "
          f"({os.cpu_count()} processes), once")  # fmt: skip
    rows = []  # (path, workers, pairs/s, views drawn in the main process)
    for workers in (0, 1, 2):
        b, n = args.batch, args.batches
        rows.append(("contrastkit", workers, ours(folder, workers, b, n), True))
        rows.append(("contrastkit, CPU part only", workers, ours(folder, workers, b, n, False), False))
        rows.append(("prepared shards", workers, ours(folder, workers, b, n, shards=shards), True))
        rows.append(("prepared shards, CPU part", workers, ours(folder, workers, b, n, False, shards), False))
        rows.append(("lightly SimCLRTransform", workers, lightly(folder, workers, b, n), False))
    floor = pil_floor(folder, args.batch * args.batches)
    print(
        f"{'path':<28} {'workers':>7} {'pairs/s':>9} {'per core':>9} {'vs lightly':>10} {'vs PIL floor':>12}"
        "   (ratios per core)"
    )
    for name, workers, rate, views_here in rows:
        cores = min(os.cpu_count() or 1, workers + (1 if views_here or workers == 0 else 0))
        peer = next(r for n, w, r, _ in rows if n.startswith("lightly") and w == workers) / min(
            os.cpu_count() or 1, max(workers, 1)
        )
        rate_per_core = rate / cores
        print(
            f"{name:<28} {workers:>7} {rate:>9.1f} {rate_per_core:>9.1f} {rate_per_core / peer:>10.2f} "
            f"{rate_per_core / floor:>12.2f}"
        )
    print(f"{'PIL decode alone':<28} {0:>7} {floor:>9.1f} {floor:>9.1f}")
    print("\nour path, ms per image in one process: " + ", ".join(
        f"{k} {v:.2f}" for k, v in stages(folder, args.batch * 4, args.batch).items()))  # fmt: skip


if __name__ == "__main__":
    main()
