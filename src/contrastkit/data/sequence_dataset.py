"""``SequenceDataset``: 1-D signals (``(N, C, L)`` float) with optional labels, from arrays or a ``.npy`` file, for
sequence methods such as CPC; and the built-in ``synthetic-signals`` data set."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from contrastkit.data.registry import check_split, register_dataset
from contrastkit.data.synthetic_signals import class_names, synthetic_signals

LABELS_SUFFIX = ".labels.npy"  # signals.npy's labels, when present: signals.labels.npy (N,) integers


class SequenceDataset(Dataset):
    """Signals and labels held as whole tensors, with items ``(signal float32 (C, L), target int)``.

    Args:
        signals: float ``(N, C, L)`` (or ``(N, L)``: one channel).
        targets: ``(N,)`` class indices in ``[0, len(classes))``, or None (unlabelled: every target -1).
        classes: the class names (required with targets).
        name: a short description for messages.

    Raises:
        ValueError: a wrong shape, non-finite values, or targets that do not match the signals or the classes.
    """

    def __init__(
        self,
        signals: torch.Tensor | np.ndarray,
        targets: torch.Tensor | np.ndarray | None = None,
        classes: Sequence[str] | None = None,
        name: str = "SequenceDataset",
    ) -> None:
        signals = torch.as_tensor(np.asarray(signals), dtype=torch.float32)
        if signals.dim() == 2:
            signals = signals[:, None]  # (N, 1, L)
        if signals.dim() != 3 or signals.shape[0] == 0 or signals.shape[-1] == 0:
            raise ValueError(f"{name}: signals must be (N, L) or (N, C, L) with N, L > 0, got {tuple(signals.shape)}")
        if not bool(torch.isfinite(signals).all()):
            raise ValueError(f"{name}: signals hold NaN or infinite values")
        if targets is None:
            targets, classes = torch.full((len(signals),), -1, dtype=torch.long), None
        targets = torch.as_tensor(np.asarray(targets)).long()
        if targets.shape != (len(signals),):
            raise ValueError(f"{name}: labels must be ({len(signals)},), got {tuple(targets.shape)}")
        labelled = targets >= 0
        if bool(labelled.any()) and (classes is None or int(targets.max()) >= len(classes)):
            raise ValueError(f"{name}: labels go up to {int(targets.max())} but there are no class names for them")
        self.signals, self.targets = signals, targets  # (N, C, L), (N,)
        self.classes = list(classes) if classes is not None else None
        self.name = name

    def __len__(self) -> int:
        return len(self.signals)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.signals[index], int(self.targets[index])


def load_sequences(path: str | os.PathLike) -> SequenceDataset:
    """Signals from a ``.npy`` file (``(N, L)`` or ``(N, C, L)``, any real dtype), with its labels from the
    ``.labels.npy`` file beside it when there is one (``(N,)`` integers ``0..K-1``; classes are named by number).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a ``.npy`` file, a file numpy cannot read without pickle, or bad shapes or values (the file
            is named).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix.lower() != ".npy":
        raise ValueError(f"{path}: sequences are read from a .npy file of (N, L) or (N, C, L) numbers")
    try:
        signals = np.load(path, allow_pickle=False)
        labels_path = path.with_name(path.name[: -len(".npy")] + LABELS_SUFFIX)
        labels = np.load(labels_path, allow_pickle=False) if labels_path.is_file() else None
    except ValueError as e:
        raise ValueError(f"{path}: not a plain numeric .npy file ({e})") from None
    if not np.issubdtype(signals.dtype, np.number):
        raise ValueError(f"{path}: holds {signals.dtype} values, not numbers")
    classes = None
    if labels is not None:
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{labels_path}: labels must be integers, got {labels.dtype}")
        classes = [str(c) for c in range(int(labels.max()) + 1)] if len(labels) else []
    return SequenceDataset(signals, labels, classes, name=str(path))


SIGNALS = {"length": 128, "num_classes": 4, "noise": 1.0, "period_range": (6.0, 48.0), "random_waveform": True}
SPLIT_SIZES = {"train": 8000, "test": 2000}


@register_dataset(name="synthetic-signals", splits=("train", "test"))
def synthetic_signals_dataset(split: str = "train", root=None, download: bool = False) -> SequenceDataset:
    """Noisy periodic signals (128 samples) whose class is their period band (4 bands from 6 to 48 samples), each
    with a random waveform, phase and amplitude: CPC's built-in data (8,000 train / 2,000 test, generated offline
    with fixed seeds; ``root`` and ``download`` are unused)."""
    check_split("synthetic-signals", split, ("train", "test"))
    signals, labels = synthetic_signals(SPLIT_SIZES[split], seed={"train": 1, "test": 2}[split], **SIGNALS)
    names = class_names(SIGNALS["num_classes"], SIGNALS["period_range"], SIGNALS["random_waveform"])
    return SequenceDataset(signals, labels, names, name=f"synthetic-signals ({split})")
