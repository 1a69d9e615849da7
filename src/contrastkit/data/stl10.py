"""STL-10: colour 96×96 images in 10 classes (5,000 train, 8,000 test) and 100,000 unlabelled ones.

The archive ``stl10_binary.tar.gz`` (2.6 GB) is found in (or, with ``download=True``, downloaded into) the cache folder
``<root or $CONTRASTKIT_DATA or ~/.cache/contrastkit>/stl10``. The members a split needs are extracted once into
``<cache>/stl10_binary/`` (only those names, each through a temporary file), then memory-mapped, so the 2.7 GB
unlabelled split costs no RAM until read; the archive may be deleted after that.

Binary format (as torchvision reads it): ``*_X.bin`` is raw uint8, 3×96×96 per image, each channel plane stored
column-major; ``*_y.bin`` is one uint8 label per image, 1..10; ``class_names.txt`` has one name per line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from contrastkit.data.array_dataset import ArrayImageDataset
from contrastkit.data.download import Opener, cache_dir, resolve_archive
from contrastkit.data.registry import check_split, register_dataset

NAME = "stl10"
FILENAME = "stl10_binary.tar.gz"
MD5 = "91f7769df0f17e558f3565bffb0c7dfb"  # torchvision.datasets.STL10.tgz_md5
URLS = ["http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"]
FOLDER = "stl10_binary"
SPLITS = ("train", "test", "unlabeled")
FILES = {  # split -> (images, labels)
    "train": ("train_X.bin", "train_y.bin"),
    "test": ("test_X.bin", "test_y.bin"),
    "unlabeled": ("unlabeled_X.bin",),
}
CLASS_FILE = "class_names.txt"
CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
IMAGE_SHAPE = (3, 96, 96)
IMAGE_BYTES = 3 * 96 * 96


def extract_members(archive_path: Path, names: list[str], dest: Path) -> None:
    """Extract ``FOLDER/<name>`` for each name into ``dest`` (regular files only, via temporary files + rename).

    Only the listed names are written, under ``dest``, whatever the archive's other member paths are.

    Raises:
        ValueError: the archive is corrupt or lacks one of the members (named in the message).
    """
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {f"{FOLDER}/{n}": n for n in names}
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            for member in archive:  # one pass over the compressed stream
                name = wanted.pop(member.name, None)
                if name is None:
                    continue
                source = archive.extractfile(member) if member.isfile() else None
                if source is None:
                    raise ValueError(f"{archive_path.name}: member {member.name} is not a regular file")
                fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.", suffix=".part")
                try:
                    with os.fdopen(fd, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
                    os.replace(tmp, dest / name)
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
                    raise
                if not wanted:
                    break
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ValueError(f"{archive_path.name}: corrupt or truncated archive ({error}) ({archive_path})") from error
    if wanted:
        raise ValueError(f"{archive_path.name}: members missing: {', '.join(sorted(wanted))} ({archive_path})")


def read_images(path: Path) -> np.ndarray:
    """Memory-map an ``*_X.bin`` file as uint8 (N, 3, 96, 96) (a strided view: planes are stored column-major)."""
    size = path.stat().st_size
    if size == 0 or size % IMAGE_BYTES:
        raise ValueError(f"{path.name}: {size} bytes is not a whole number of {IMAGE_BYTES}-byte images ({path})")
    data = np.memmap(path, dtype=np.uint8, mode="c")  # copy-on-write: writable for torch.from_numpy, never written back
    return data.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)  # stored (N, C, W, H) -> (N, C, H, W)


def read_labels(path: Path, count: int) -> np.ndarray:
    """Read a ``*_y.bin`` file: ``count`` labels 1..10, returned as 0..9 (int64)."""
    labels = np.fromfile(path, dtype=np.uint8).astype(np.int64)
    if len(labels) != count:
        raise ValueError(f"{path.name}: {len(labels)} labels for {count} images ({path})")
    if count and (labels.min() < 1 or labels.max() > len(CLASSES)):
        found = f"{labels.min()}..{labels.max()}"
        raise ValueError(f"{path.name}: labels must be 1..{len(CLASSES)}, found {found} ({path})")
    return labels - 1


@register_dataset(splits=SPLITS)
def stl10(
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
    opener: Opener | None = None,
) -> ArrayImageDataset:
    """STL-10 as uint8 (3, 96, 96) images; labels 0..9, or -1 for every image of the ``"unlabeled"`` split.

    Args:
        split: ``"train"`` (5,000 images), ``"test"`` (8,000) or ``"unlabeled"`` (100,000; targets -1).
        root: the data root (archive in ``<root>/stl10/`` or directly in ``root``; extracted files in
            ``<root>/stl10/stl10_binary/``).
        download: download the archive (2.6 GB, MD5-checked) when neither it nor the extracted files are found.
        opener: ``opener(url) -> binary file object`` used for the download (default ``urllib.request.urlopen``).

    Raises:
        FileNotFoundError: nothing found and ``download=False`` (the message says where it looked).
        ValueError: an unknown split, or corrupt files (the message names them).
    """
    check_split(NAME, split, SPLITS)
    extracted = cache_dir(NAME, root) / FOLDER
    needed = [*FILES[split], CLASS_FILE]
    missing = [n for n in needed if not (extracted / n).is_file()]
    if missing:
        archive = resolve_archive(NAME, FILENAME, MD5, URLS, root, download, opener)
        extract_members(archive, missing, extracted)
    images = read_images(extracted / FILES[split][0])  # (N, 3, 96, 96)
    if split == "unlabeled":
        targets = np.full(len(images), -1, dtype=np.int64)
    else:
        targets = read_labels(extracted / FILES[split][1], len(images))
    classes = [
        line.strip() for line in (extracted / CLASS_FILE).read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    if len(classes) != len(CLASSES):
        raise ValueError(f"{CLASS_FILE}: expected {len(CLASSES)} class names, got {classes} ({extracted})")
    return ArrayImageDataset(images, targets, classes, name=f"{NAME} ({split})")
