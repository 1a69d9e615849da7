"""scikit-learn's bundled handwritten digits: 1,797 grayscale 8×8 images in 10 classes; always offline."""

from __future__ import annotations

import os

import numpy as np

from contrastkit.data.array_dataset import ArrayImageDataset
from contrastkit.data.registry import check_split, register_dataset

NAME = "digits"
SPLITS = ("train", "test", "all")
CLASSES = [str(d) for d in range(10)]
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def stratified_split(targets: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: (train indices, test indices), both sorted.

    Each class contributes ``round(test_fraction * class count)`` test samples, drawn with a fixed-seed
    ``numpy.random.default_rng``, so the split depends only on ``targets``, the fraction and the seed.
    """
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        test.append(rng.permutation(members)[: round(test_fraction * len(members))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(targets)), test_idx)  # sorted
    return train_idx, test_idx


@register_dataset(splits=SPLITS)
def digits(split: str = "train", root: str | os.PathLike | None = None, download: bool = False) -> ArrayImageDataset:
    """The digits as uint8 (1, 8, 8) images (values 0..16 scaled to 0..255) with labels 0..9.

    Args:
        split: ``"train"`` (80 %, stratified, fixed seed), ``"test"`` (the other 20 %) or ``"all"`` (1,797).
        root: ignored (the data ships with scikit-learn).
        download: ignored (never needed).
    """
    from sklearn.datasets import load_digits

    check_split(NAME, split, SPLITS)
    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    targets = bunch.target.astype(np.int64)  # (N,)
    if split != "all":
        train_idx, test_idx = stratified_split(targets, TEST_FRACTION, SPLIT_SEED)
        keep = train_idx if split == "train" else test_idx
        images, targets = images[keep], targets[keep]
    return ArrayImageDataset(np.ascontiguousarray(images), targets, CLASSES, name=f"{NAME} ({split})")
