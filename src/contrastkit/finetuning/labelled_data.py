"""The labelled images of a fine-tuning run: a pool to draw labels from and a test split, at the encoder's size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from contrastkit.data import ArrayImageDataset, load_dataset
from contrastkit.data.labelled import FixedSizeImages, has_test_split, take

HELD_OUT_FRACTION = 0.2  # data without a test split: this fraction (seeded) is the test split, never drawn from


@dataclass
class LabelledData:
    """A labelled pool (images read only when drawn) and the test split, with the class names."""

    pool: object  # a data set whose items are (uint8 (C, S, S), class id) or Skipped
    pool_labels: np.ndarray  # (N,) class ids of the pool (-1: unlabelled)
    test_images: Tensor  # (M, C, S, S) uint8
    test_labels: Tensor  # (M,) int64
    classes: list[str]
    source: str  # "fashion-mnist: train / test split", "FOLDER: 80% / 20% held out (seed 0)"


def _fit(dataset, size: int, channels: int):
    """``dataset`` as uint8 images at the encoder's size and channels."""
    if isinstance(dataset, ArrayImageDataset) and dataset.images.shape[1] == channels:
        return dataset  # the views and the feature extraction resize batches themselves
    return FixedSizeImages(dataset, size, channels)


def _take(dataset, indices: np.ndarray) -> tuple[Tensor, Tensor]:
    subset = take(dataset, indices)
    return subset.images, subset.labels


def load_labelled_data(data: str, size: int, channels: int, seed: int = 0) -> LabelledData:
    """A built-in data set's train split as the pool and its test split as the test set, or for any other data
    (a folder of class sub-folders, a listing) a seeded :data:`HELD_OUT_FRACTION` held out as the test set.

    Raises:
        ValueError: data without class labels or class names.
    """
    if has_test_split(data):
        train, test = load_dataset(data, split="train"), load_dataset(data, split="test")
        source = f"{data}: train split (labels drawn from it), test split"
        pool_labels = np.asarray(train.targets)
        pool = _fit(train, size, channels)
        test_images, test_labels = _take(_fit(test, size, channels), np.arange(len(test)))
    else:
        dataset = load_dataset(data)
        order = np.random.default_rng(seed).permutation(len(dataset))
        cut = max(1, round(HELD_OUT_FRACTION * len(order)))
        targets = np.asarray(getattr(dataset, "targets", None) or [-1] * len(dataset))
        pool_labels = np.full(len(dataset), -1, dtype=np.int64)
        pool_labels[order[cut:]] = targets[order[cut:]]  # held-out images are never drawn as labels
        pool = _fit(dataset, size, channels)
        test_images, test_labels = _take(pool, np.sort(order[:cut]))
        train = dataset
        source = f"{data}: {len(order) - cut} images to draw labels from, {cut} held out for testing (seed {seed})"
    classes = list(getattr(train, "classes", None) or [])
    if not classes or (pool_labels < 0).all():
        raise ValueError(f"{data}: no class labels; fine-tuning needs a labelled data set or class sub-folders")
    if len(test_labels) == 0:
        raise ValueError(f"{data}: no labelled test images")
    return LabelledData(pool, pool_labels.astype(np.int64), test_images, test_labels, classes, source)


def take_labelled(data: LabelledData, indices: np.ndarray) -> tuple[Tensor, Tensor]:
    """uint8 images ``(n, C, H, W)`` and labels of the pool at ``indices`` (unreadable images left out)."""
    return _take(data.pool, indices)
