"""``contrastkit prepare``: an image folder written once as WebDataset shards of images already at the training
size, so that every later epoch decodes a small JPEG and resizes nothing (FFCV's premise, without its format: the
shards are plain tar files that ``data.path`` already streams).

Each image is decoded, brought to ``image_size`` x ``image_size`` exactly as training brings path data to
``data.image_size`` (:func:`~contrastkit.data.resize_center_crop.resize_center_crop`: shorter side resized, centre
crop) and stored as a JPEG of ``quality``; its class (from class sub-folders) as ``KEY.cls``. The views then see
the same pixels as training from the folder, up to JPEG's rounding at that quality (stored without chroma
subsampling; on scikit-learn's photographs at 256 px the mean absolute difference is 1.5 grey levels at quality 95,
0.4 at quality 100, against colour jitter of tens of levels). Unreadable images are skipped, counted once and named.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from contrastkit.data.image_folder import ImageFolderDataset
from contrastkit.data.resize_center_crop import resize_center_crop
from contrastkit.data.skip_report import Skipped, check_some_readable

SUMMARY = "prepare.json"  # written beside the shards (a shard folder may hold JSON descriptions)


@dataclass
class PrepareSettings:
    """How ``contrastkit prepare`` writes the shards."""

    image_size: int = 256  # side of the stored square images: the training recipe's data.image_size
    quality: int = 95  # JPEG quality of the stored images (1-100)
    shard_size: int = 1000  # images per shard (more shards than data-loading processes spreads the reading)
    workers: int = 0  # processes decoding and resizing (0: the main process only); default: the machine's cores

    def check(self) -> None:
        """Refuse bad settings before anything is read (ValueError naming the field)."""
        if not 8 <= self.image_size <= 4096:
            raise ValueError(f"image_size must be in [8, 4096], got {self.image_size}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in [1, 100], got {self.quality}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")


@dataclass
class PreparedShards:
    """What ``prepare`` wrote."""

    shards: list[str]  # shard file names, in order
    images: int  # images written
    classes: list[str] | None  # class names by ``.cls`` index (None: no class sub-folders)
    source: str  # the image folder read
    settings: PrepareSettings  # how the shards were written
    skipped: list[dict[str, str]] = field(default_factory=list)  # unreadable images: path, reason, detail
    seconds: float = 0.0  # wall time


class _Resized(Dataset):
    """Image ``i`` of the folder at ``size`` as JPEG bytes, with its class (worker side), or Skipped."""

    def __init__(self, images: ImageFolderDataset, size: int, quality: int) -> None:
        self.images, self.size, self.quality = images, size, quality

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[bytes, int] | Skipped:
        from PIL import Image

        item = self.images[index]
        if isinstance(item, Skipped):
            return item
        image, target = item
        square = resize_center_crop(image, self.size)  # (3, S, S) uint8, as training brings path data to size
        buffer = io.BytesIO()
        # no chroma subsampling (4:4:4): at training sizes 4:2:0 costs several grey levels on detailed photos
        Image.fromarray(square.permute(1, 2, 0).numpy()).save(buffer, "JPEG", quality=self.quality, subsampling=0)
        return buffer.getvalue(), int(target)


def _as_is(item):
    """The loader's collate for one item at a time (a module function: workers started by spawn pickle it)."""
    return item


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def prepare_shards(source: str | os.PathLike, out_dir: str | os.PathLike, settings: PrepareSettings) -> PreparedShards:
    """Write the images of the folder ``source`` into ``out_dir`` as ``shard-000000.tar``, ... (WebDataset:
    ``KEY.jpg`` and, with class sub-folders, ``KEY.cls``) plus ``prepare.json``; returns the summary.

    ``out_dir`` must be new or empty (the command line stages it and refuses an existing one). Images are taken in
    the folder's order (shuffling is training's job: the stream shuffles shards and samples per epoch).

    Raises:
        ValueError: bad settings, a folder without images, or none of them readable.
    """
    settings.check()
    start = time.perf_counter()
    images = ImageFolderDataset(source, channels=3)
    images.min_side = settings.image_size  # as training reads a folder: a JPEG 4x larger decodes at a reduced scale
    check_some_readable(images, str(source))  # a folder of only unreadable files: refused before writing
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    loader = DataLoader(
        _Resized(images, settings.image_size, settings.quality),
        batch_size=None,
        num_workers=settings.workers,
        collate_fn=_as_is,
    )
    shards: list[str] = []
    skipped: list[Skipped] = []
    written, tar = 0, None
    try:
        for item in loader:
            if isinstance(item, Skipped):
                skipped.append(item)
                continue
            if written % settings.shard_size == 0:
                if tar is not None:
                    tar.close()
                shards.append(f"shard-{len(shards):06d}.tar")
                tar = tarfile.open(out / shards[-1], "w")
            jpeg, target = item
            key = f"{written:08d}"
            _add(tar, f"{key}.jpg", jpeg)
            if images.classes:
                _add(tar, f"{key}.cls", str(target).encode())
            written += 1
    finally:
        if tar is not None:
            tar.close()
    result = PreparedShards(
        shards=shards,
        images=written,
        classes=images.classes,
        source=str(source),
        settings=settings,
        skipped=[{"path": s.path, "reason": s.reason, "detail": s.detail} for s in skipped],
        seconds=time.perf_counter() - start,
    )
    (out / SUMMARY).write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return result


def default_workers() -> int:
    """Processes for ``prepare`` when not given: the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


__all__ = ["PrepareSettings", "PreparedShards", "default_workers", "prepare_shards"]
