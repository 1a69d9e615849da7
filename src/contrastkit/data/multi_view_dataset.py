"""Several random views of each sample, their collation into batches, and reproducible DataLoader workers.

Reproducible runs: random views are drawn in the DataLoader workers, from each worker's torch RNG, which the
DataLoader seeds from its ``generator``. Pass a seeded generator and :func:`seed_worker` (which also seeds
``random`` and numpy in each worker), e.g. ``DataLoader(ds, ..., **reproducible_loader_kwargs(seed))``. With
``num_workers=0`` the views draw from the main process's RNG: call ``torch.manual_seed(seed)`` too. Identical
batches also need the same ``batch_size``, ``num_workers`` and data set order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from contrastkit.data.skip_report import Skipped, check_channels, split_skipped

_LUMA = torch.tensor([0.299, 0.587, 0.114])  # ITU-R BT.601 weights, as Pillow's convert("L")


def match_channels(image: torch.Tensor, channels: int | None) -> torch.Tensor:
    """uint8 (C, H, W) image with ``channels`` channels: gray -> RGB by repeating, RGB -> gray by luminance."""
    if channels is None or image.shape[0] == channels:
        return image
    if channels == 3:
        return image.expand(3, -1, -1).contiguous()
    gray = (_LUMA.view(3, 1, 1) * image.float()).sum(0, keepdim=True)  # (1, H, W)
    return gray.round().clamp(0, 255).to(torch.uint8)


class MultiViewDataset(Dataset):
    """Wraps a data set so that each item is ``(views, label_or_index)``; Skipped items pass through.

    ``views(image)`` makes the list of views of one uint8 (C, H, W) image. The second element is chosen by
    ``target``: ``"label"`` the data set's target (an int, -1 when unlabelled, or a caption str), ``"index"`` the
    sample index, ``"auto"`` (default) the caption for image-text data, the label for a labelled data set
    (``dataset.classes`` not None; unlabelled strays keep -1), and otherwise the label where it is >= 0 and the
    sample index where it is -1 (instance discrimination). For an IterableDataset (e.g. WebDatasetShards) the
    result is an IterableDataset and the index of a sample is unique within the epoch across ranks and workers
    (``count * readers + reader``) but not stable across epochs when shuffling.

    Args:
        dataset: a data set of ``(image uint8 (C, H, W), target int | caption str)`` items (or Skipped).
        views: callable image -> list of V tensors.
        channels: convert images to 1 or 3 channels before the views (default: ``views.channels`` when the views
            object has it, else unchanged), so a folder mixing grayscale and colour files still batches.
        target: ``"auto"``, ``"label"`` or ``"index"``.
    """

    def __new__(cls, dataset: Any = None, *args: Any, **kwargs: Any):
        if cls is MultiViewDataset and isinstance(dataset, IterableDataset):
            cls = IterableMultiViewDataset
        return super().__new__(cls)

    def __init__(
        self,
        dataset: Any,
        views: Callable[[torch.Tensor], Sequence[torch.Tensor]],
        channels: int | None = None,
        target: str = "auto",
    ) -> None:
        if target not in ("auto", "label", "index"):
            raise ValueError(f"target must be 'auto', 'label' or 'index', got {target!r}")
        self.dataset = dataset
        self.views = views
        self.channels = check_channels(channels if channels is not None else getattr(views, "channels", None))
        self.target = target
        self.classes = getattr(dataset, "classes", None)

    def _item(self, item: Any, index: int) -> tuple[list[torch.Tensor], int | str] | Skipped:
        if isinstance(item, Skipped):
            return item
        image, label = item
        views = list(self.views(match_channels(image, self.channels)))
        if self.target == "index":
            return views, index
        if self.target == "label" or isinstance(label, str) or self.classes is not None or label >= 0:
            return views, label
        return views, index

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[list[torch.Tensor], int | str] | Skipped:
        return self._item(self.dataset[index], index)


class IterableMultiViewDataset(MultiViewDataset, IterableDataset):
    """:class:`MultiViewDataset` over an IterableDataset (``MultiViewDataset(iterable, views)`` makes one)."""

    def __getitem__(self, index: int):
        raise TypeError("an IterableMultiViewDataset is iterated, not indexed")

    def __iter__(self) -> Iterator[tuple[list[torch.Tensor], int | str] | Skipped]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, world_size = getattr(self.dataset, "rank", 0), getattr(self.dataset, "world_size", 1)
        readers, reader = world_size * num_workers, rank * num_workers + worker
        for count, item in enumerate(self.dataset):
            yield self._item(item, count * readers + reader)


def collate_views(batch: Sequence[Any]) -> tuple[list[torch.Tensor], torch.Tensor | list[str], list[Skipped]]:
    """Collate ``(views, label)`` items into ``(views, targets, skipped)``, dropping Skipped items.

    Returns:
        views: V tensors, each (B, C, H, W), B the number of usable samples; ``[]`` when B is 0.
        targets: int64 (B,), or a list of B captions for image-text data.
        skipped: the Skipped items of this batch (add them to a SkipReport in the main process).
    """
    kept, skipped = split_skipped(batch)
    if not kept:
        return [], torch.empty(0, dtype=torch.int64), skipped
    n_views = len(kept[0][0])
    if any(len(views) != n_views for views, _ in kept):
        raise ValueError(f"every sample must have the same number of views, got {sorted({len(v) for v, _ in kept})}")
    stacked = []
    for v in range(n_views):
        shapes = {tuple(views[v].shape) for views, _ in kept}
        if len(shapes) > 1:
            raise ValueError(
                f"view {v} has different shapes in one batch: {sorted(shapes)}; views must crop/resize to one size, "
                "and images of mixed grayscale/colour need channels=1 or 3 (on the data set or MultiViewDataset)"
            )
        stacked.append(torch.stack([views[v] for views, _ in kept]))  # (B, C, H, W)
    labels = [label for _, label in kept]
    if isinstance(labels[0], str):
        return stacked, labels, skipped
    return stacked, torch.tensor(labels, dtype=torch.int64), skipped


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed ``random`` and numpy from the worker's torch seed (set by the loader)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (user code and older transforms use the global numpy RNG)


def reproducible_loader_kwargs(seed: int) -> dict[str, Any]:
    """``generator`` and ``worker_init_fn`` for a DataLoader whose shuffling and random views repeat with ``seed``."""
    return {"generator": torch.Generator().manual_seed(seed), "worker_init_fn": seed_worker}
