"""A folder of image files as a data set, with class labels from the first-level sub-folders."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable

import torch
from torch.utils.data import Dataset

from contrastkit.data.skip_report import Skipped, check_channels, load_image_or_skip

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def normalize_extensions(extensions: Iterable[str]) -> tuple[str, ...]:
    """Lower-case extensions with a leading dot: ``("JPG", ".png")`` -> ``(".jpg", ".png")``."""
    if isinstance(extensions, str):
        extensions = (extensions,)
    result = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    if not result:
        raise ValueError("extensions must name at least one file extension, e.g. ('.jpg', '.png')")
    return result


def list_images(folder: str, extensions: tuple[str, ...]) -> list[str]:
    """Image files under ``folder``: each folder's files by name, then its sub-folders by name; hidden ones ignored.

    Symbolic links are followed (data sets are often assembled from links); a link back to an ancestor is not.
    """
    found: list[str] = []
    real_of: dict[str, str] = {}  # visited folder -> its real path, to detect a link back to an ancestor
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        parent, child = os.path.dirname(dirpath), dirpath
        while parent != child and parent in real_of and real_of[parent] != real:
            parent, child = os.path.dirname(parent), parent
        if parent != child and real_of.get(parent) == real:  # a symlink cycle: this folder is its own ancestor
            dirnames[:] = []
            continue
        real_of[dirpath] = real
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(
            os.path.join(dirpath, f)
            for f in sorted(filenames)
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in extensions
        )
    return found


class ImageFolderDataset(Dataset):
    """Every image file under a folder, labelled by the first-level sub-folder it is in.

    Layouts::

        root/cat/001.jpg, root/dog/a/002.png   ->  classes ["cat", "dog"], targets 0 and 1 (recursive)
        root/001.jpg, root/002.png             ->  classes None, every target -1 (unlabelled)
        root/cat/001.jpg, root/extra.jpg       ->  classes ["cat"]; extra.jpg (directly in root) gets -1

    Class indices follow sorted class-folder names, as torchvision's ``ImageFolder``. Sub-folders with no image file
    are not classes (a warning names them). Hidden files and folders are ignored (``.DS_Store``, macOS ``._x.jpg``).
    ``__init__`` only lists files: images are read in ``__getitem__``; a file that cannot be decoded (corrupt,
    truncated, zero bytes, deleted since) gives a :class:`~contrastkit.data.skip_report.Skipped` instead of an error.
    EXIF orientation is not applied (as torchvision's ImageFolder).

    Args:
        root: the folder.
        extensions: file extensions that are images (case-insensitive).
        channels: None keeps grayscale images at 1 channel and others at 3 (RGB); 1 or 3 forces all images to that.
            Use 3 (or 1) when a folder mixes grayscale and colour images and the batches must stack.
        labels: ``"auto"`` (class sub-folders when there are any with images, else unlabelled), ``"folders"``
            (class sub-folders required; a ValueError when there are none) or ``"none"`` (all -1, classes None).

    Raises:
        FileNotFoundError: ``root`` does not exist or is not a folder.
        ValueError: no image file under ``root`` (the message names the folder and the accepted extensions), or
            ``labels="folders"`` and no class sub-folder.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        extensions: Iterable[str] = IMAGE_EXTENSIONS,
        channels: int | None = None,
        labels: str | None = "auto",
    ) -> None:
        self.root = os.fspath(root)
        self.extensions = normalize_extensions(extensions)
        self.channels = check_channels(channels)
        self.min_side: int | None = None  # the side images are brought to next: large JPEGs decoded at 1/2 ... 1/8
        labels = "none" if labels is None else labels
        if labels not in ("auto", "folders", "none"):
            raise ValueError(f"labels must be 'auto', 'folders' or 'none', got {labels!r}")
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"image folder {self.root!r} does not exist or is not a directory")

        files = list_images(self.root, self.extensions)
        if not files:
            raise ValueError(
                f"image folder {self.root!r} contains no image files (searched recursively for extensions "
                f"{', '.join(self.extensions)}; hidden files ignored); pass extensions=... for other file types"
            )
        by_folder: dict[str | None, list[str]] = {}
        for path in files:
            parts = os.path.relpath(path, self.root).split(os.sep)
            by_folder.setdefault(parts[0] if len(parts) > 1 else None, []).append(path)
        class_names = sorted(k for k in by_folder if k is not None)
        if labels == "folders" and not class_names:
            raise ValueError(f"image folder {self.root!r} has no class sub-folders with images (labels='folders')")
        if labels != "none" and class_names:
            empty = sorted(
                d.name
                for d in os.scandir(self.root)
                if d.is_dir() and not d.name.startswith(".") and d.name not in by_folder
            )
            if empty:
                warnings.warn(
                    f"image folder {self.root!r}: sub-folders without image files are not classes: {empty[:10]}",
                    stacklevel=2,
                )
            self.classes: list[str] | None = class_names
        else:
            self.classes = None
        self.class_to_idx: dict[str, int] = {name: i for i, name in enumerate(self.classes or [])}
        self.samples: list[tuple[str, int]] = []
        for path in files:  # walk order: a folder's files (sorted), then its sub-folders (sorted)
            parts = os.path.relpath(path, self.root).split(os.sep)
            target = self.class_to_idx[parts[0]] if self.classes and len(parts) > 1 else -1
            self.samples.append((path, target))
        self.targets: list[int] = [t for _, t in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | Skipped:
        """The image as uint8 (C, H, W) and its class index (-1 when unlabelled), or Skipped for a bad file."""
        path, target = self.samples[index]
        image = load_image_or_skip(path, self.channels, min_side=self.min_side)
        if isinstance(image, Skipped):
            return image
        return image, target

    def __repr__(self) -> str:
        n_classes = len(self.classes) if self.classes else 0
        return f"ImageFolderDataset({self.root!r}, samples={len(self)}, classes={n_classes}, channels={self.channels})"
