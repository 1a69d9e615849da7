"""Labelled images in memory for probes and monitors, and any image data set brought to one fixed size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from contrastkit.data.array_dataset import ArrayImageDataset
from contrastkit.data.multi_view_dataset import match_channels
from contrastkit.data.registry import get_dataset, is_registered
from contrastkit.data.resize_center_crop import resize_center_crop
from contrastkit.data.skip_report import Skipped


class FixedSizeImages(Dataset):
    """Items ``(uint8 (channels, size, size), target)`` of any image data set; unreadable images stay Skipped."""

    def __init__(self, dataset: Any, size: int, channels: int) -> None:
        self.dataset, self.size, self.channels = dataset, size, channels
        self.classes = getattr(dataset, "classes", None)
        self.targets = getattr(dataset, "targets", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, int] | Skipped:
        item = self.dataset[index]
        if isinstance(item, Skipped):
            return item
        image, target = item
        if not isinstance(target, (int, str)):
            target = -1
        return resize_center_crop(match_channels(image, self.channels), self.size), target


def image_geometry(dataset: Any, probe: int = 32, largest: int = 256) -> tuple[int, int]:
    """``(channels, size)`` that fit a folder's images: 1 channel when every probed image is grayscale (else 3), and
    the smallest shorter side among them (at most ``largest``), from the first ``probe`` readable images, so a
    folder of 28-pixel grayscale images is read at 28 x 28 x 1, not 256 x 256 x 3. ``(3, largest)`` when none reads."""
    channels, size, seen = 1, largest, 0
    items = (dataset[i] for i in range(len(dataset))) if hasattr(dataset, "__len__") else iter(dataset)
    for item in items:  # a map-style data set, or a stream (tar shards) read from its start
        if isinstance(item, Skipped):
            continue
        image = item[0]  # uint8 (C, H, W)
        channels = max(channels, int(image.shape[0]))
        size = min(size, int(min(image.shape[-2:])))
        seen += 1
        if seen == probe:
            break
    return (channels, size) if seen else (3, largest)


def has_test_split(data: str | None) -> bool:
    """Whether ``data`` names a built-in data set with a test split of its own, which then scores the result; any
    other data (a folder, a listing, a data set without one) holds out a part of its rows instead (:func:`hold_out`)."""
    return data is not None and is_registered(data) and "test" in (get_dataset(data).splits or ())


def hold_out(order: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(held, rest)``: the first ``size`` indices of a shuffled ``order``, at most a fifth of it, held out for
    scoring (the rest to train or fit on), when a data set has no test split of its own."""
    cut = min(size, len(order) // 5)
    return order[:cut], order[cut:]


@dataclass
class Labelled:
    """A labelled image subset for monitors and probes: uint8 images and their class ids."""

    images: Tensor  # (N, C, S, S) uint8
    labels: Tensor  # (N,) int64


def take(dataset: Any, indices: np.ndarray) -> Labelled:
    """The labelled images at ``indices`` (unreadable and unlabelled ones dropped)."""
    if isinstance(dataset, ArrayImageDataset):
        idx = torch.as_tensor(indices, dtype=torch.long)
        images, labels = dataset.images[idx], dataset.targets[idx]
    else:
        items = [dataset[int(i)] for i in indices]
        items = [it for it in items if not isinstance(it, Skipped)]
        images = torch.stack([im for im, _ in items]) if items else torch.empty(0, dtype=torch.uint8)
        labels = torch.tensor([t if isinstance(t, int) else -1 for _, t in items], dtype=torch.long)  # captions: -1
    keep = labels >= 0
    return Labelled(images[keep], labels[keep])
