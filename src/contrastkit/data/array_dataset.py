"""A map-style data set over in-memory (or memory-mapped) image arrays: the built-in data sets' common form."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


class ArrayImageDataset(Dataset):
    """Images and labels held as whole arrays, with items ``(image uint8 (C, H, W), target int)``.

    ``images`` and ``targets`` are public, so a caller can take whole batches at once
    (``ds.images[idx]``, ``ds.targets[idx]``) without going through ``__getitem__``.

    Args:
        images: uint8 (N, C, H, W), a tensor or a numpy array (shared, not copied; it may be memory-mapped).
        targets: (N,) integer class indices in ``[0, len(classes))``, or -1 for an unlabelled image.
        classes: the class names, or None for an unlabelled data set (then every target must be -1).
        name: a short description for ``repr`` (``"cifar10 (train)"``).
        class_wording: words that stand for some classes in captions and zero-shot prompts, where the bare name
            reads poorly to a text encoder (``{"Sneaker": "sneaker, a sports shoe"}``).

    Raises:
        ValueError: wrong dtype or rank, N mismatch, or a target out of range.
    """

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        targets: torch.Tensor | np.ndarray | Sequence[int],
        classes: Sequence[str] | None = None,
        name: str = "ArrayImageDataset",
        class_wording: dict[str, str] | None = None,
    ) -> None:
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"{name}: images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        if targets.dim() != 1 or len(targets) != len(images):
            raise ValueError(f"{name}: targets must be ({len(images)},), got {tuple(targets.shape)}")
        self.classes: list[str] | None = list(classes) if classes is not None else None
        n_classes = len(self.classes) if self.classes is not None else 0
        bad = (targets < -1) | (targets >= n_classes)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"{name}: target {int(targets[i])} at index {i} is out of range: expected -1 (unlabelled) or a class "
                f"index in [0, {n_classes})"
            )
        self.images = images  # uint8 (N, C, H, W)
        self.targets = targets  # long (N,)
        self.name = name
        self.class_wording = dict(class_wording or {})

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """The image as a contiguous uint8 (C, H, W) tensor and its target (-1 when unlabelled)."""
        return self.images[index].contiguous(), int(self.targets[index])

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.images.shape[1:])
        n_classes = len(self.classes) if self.classes is not None else 0
        return f"ArrayImageDataset({self.name}, samples={len(self)}, image={shape}, classes={n_classes})"
