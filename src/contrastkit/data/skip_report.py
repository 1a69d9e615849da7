"""Bad data loses nothing and stops nothing: skip a sample that cannot be decoded, count it, and say which and why.

The contract, for every data set in ``contrastkit.data``:

1. A data set returns a :class:`Skipped` sentinel (a file name and a reason, both plain strings, so it pickles out of
   DataLoader worker processes) instead of raising when one sample's file is unreadable, empty, truncated or not an
   image. Only decoding errors are caught; a bug in the code still raises.
2. The collate function (:func:`split_skipped`, used by ``collate_views``) drops the sentinels from the batch and
   returns them next to it, so they travel from the worker to the main process with the batch they belong to.
3. A :class:`SkipReport` in the main process accumulates them over an epoch; :meth:`SkipReport.summary` lists the
   counts by reason and the first paths; :meth:`SkipReport.reset` starts the next epoch.

A data set with no usable sample at all is a configuration error, raised before training starts
(:func:`check_not_empty`, and the data sets' own checks at construction).

Example::

    report = SkipReport()
    for epoch in range(epochs):
        report.reset()
        for views, targets in report.track(loader):  # drops empty batches, records the skipped samples
            ...
        if report.count:
            print(report.summary())
"""

from __future__ import annotations

import re
import struct
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError

from contrastkit.data.decode_image import decode_image

# What Pillow raises for a file that is not a decodable image: OSError (truncated data, decoder errors,
# UnidentifiedImageError), SyntaxError / ValueError / EOFError / struct.error (malformed headers in several plugins),
# zlib.error (corrupt compressed streams), DecompressionBombError (dimensions far beyond Image.MAX_IMAGE_PIXELS).
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


@dataclass(frozen=True)
class Skipped:
    """Stands in for a sample that could not be loaded.

    Attributes:
        path: the file (or ``shard.tar/key.ext`` inside a shard) that failed.
        reason: a short category that groups skips in the report, e.g. ``"empty file"``, ``"truncated image"``.
        detail: the underlying error, e.g. ``"OSError: image file is truncated (79 bytes not processed)"``.
    """

    path: str
    reason: str
    detail: str = ""


def skipped_from_error(path: str, error: BaseException) -> Skipped:
    """Turn a decoding error into a :class:`Skipped` with a reason that groups well in the report."""
    message = re.sub(r" <_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(error))  # names nothing useful
    if isinstance(error, UnidentifiedImageError):
        reason = "not an image (unrecognised format)"
    elif isinstance(error, Image.DecompressionBombError):
        reason = "image too large (decompression bomb check)"
    elif isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError):
        reason = "unreadable file"
    elif "truncated" in message.lower():
        reason = "truncated image"
    else:
        reason = "corrupt image data"
    return Skipped(str(path), reason, f"{type(error).__name__}: {message}")


def load_image_or_skip(
    source: str | bytes, channels: int | None = None, name: str | None = None, min_side: int | None = None
) -> torch.Tensor | Skipped:
    """Read and decode one image; a bad file gives a :class:`Skipped` instead of an exception.

    Args:
        source: a file path, or the encoded bytes (then ``name`` says where they came from).
        channels: see :func:`decode_image`.
        name: the path reported for bytes; defaults to ``source`` for a path.
        min_side: see :func:`decode_image` (a large JPEG decoded at a reduced scale).

    Returns:
        uint8 tensor (C, H, W), or :class:`Skipped`.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data, path = bytes(source), name or "<bytes>"
    else:
        path = name or str(source)
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as error:
            return skipped_from_error(path, error)
    if not data:
        return Skipped(path, "empty file", "0 bytes")
    try:
        return decode_image(data, channels, min_side)
    except DECODE_ERRORS as error:
        return skipped_from_error(path, error)


def check_channels(channels: int | None) -> int | None:
    """Validate a ``channels=`` option (None, 1 or 3) and return it."""
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
    return channels


def split_skipped(batch: Iterable[Any]) -> tuple[list[Any], list[Skipped]]:
    """Separate the usable samples of a batch from its :class:`Skipped` sentinels, keeping the order."""
    kept, skipped = [], []
    for item in batch:
        (skipped if isinstance(item, Skipped) else kept).append(item)
    return kept, skipped


def check_not_empty(dataset: Any, name: str | None = None) -> None:
    """Raise before training when a data set has no samples at all.

    Map-style data sets are checked with ``len``; an iterable one is iterated until its first usable sample
    (a stream whose every sample is bad also counts as empty).

    Raises:
        ValueError: naming the data set when it has no (usable) sample.
    """
    label = name or getattr(dataset, "path", None) or getattr(dataset, "root", None) or type(dataset).__name__
    if hasattr(dataset, "__len__"):
        try:
            empty = len(dataset) == 0
        except TypeError:  # an IterableDataset wrapper whose source has no length
            empty = None
        if empty is not None:
            if empty:
                raise ValueError(f"data set {label} has no samples: nothing to train on")
            return
    skipped = 0
    for item in dataset:
        if not isinstance(item, Skipped):
            return
        skipped += 1
    raise ValueError(f"data set {label} has no usable samples ({skipped} skipped as unreadable): nothing to train on")


def check_some_readable(dataset: Any, label: str, what: str = "images") -> None:
    """Raise before training when no sample of a map-style data set can be read (a folder of corrupt files).

    Samples are read in order until the first usable one: one read for a healthy folder, every file for a folder
    whose files are all bad (each of them would fail in training anyway).

    Raises:
        ValueError: ``"LABEL: none of the N images could be read (first: NAME: WHY)"``.
    """
    first: Skipped | None = None
    for index in range(len(dataset)):
        item = dataset[index]
        if not isinstance(item, Skipped):
            return
        first = first or item
    if first is None:
        raise ValueError(f"{label}: no {what} to train on")
    name = first.path.replace("\\", "/").rsplit("/", 1)[-1]
    why = re.sub(r" '[^']*'$", "", first.detail) if first.detail else first.reason  # the path is named already
    raise ValueError(f"{label}: none of the {len(dataset)} {what} could be read (first: {name}: {why})")


class SkipReport:
    """Accumulates the samples skipped in the main process, one epoch at a time."""

    def __init__(self) -> None:
        self._items: list[Skipped] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, skipped: Skipped | Iterable[Skipped]) -> None:
        """Record one :class:`Skipped` or any iterable of them (e.g. the list a collate function returned). A file
        met again (every epoch reads it) is counted and listed once."""
        for item in [skipped] if isinstance(skipped, Skipped) else skipped:
            if not isinstance(item, Skipped):
                raise TypeError(f"SkipReport.add expects Skipped items, got {type(item).__name__}")
            key = (str(item.path), item.reason)
            if key not in self._seen:
                self._seen.add(key)
                self._items.append(item)

    @property
    def count(self) -> int:
        """How many distinct samples were skipped since the last :meth:`reset`."""
        return len(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def items(self) -> list[Skipped]:
        """The skipped samples, in the order they were recorded (a copy)."""
        return list(self._items)

    def by_reason(self) -> dict[str, int]:
        """Counts per reason, most frequent first."""
        return dict(Counter(item.reason for item in self._items).most_common())

    def reset(self) -> None:
        """Forget everything recorded."""
        self._items.clear()
        self._seen.clear()

    def track(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Iterate a DataLoader whose batches end with the skipped list, recording it and hiding empty batches.

        Each batch is a tuple ``(*data, skipped)`` (as :func:`~contrastkit.data.multi_view_dataset.collate_views`
        returns). ``skipped`` is added to the report and ``data`` is yielded (a tuple, or its single element);
        a batch whose every sample was skipped is recorded and not yielded.
        """
        for batch in batches:
            *data, skipped = batch
            self.add(skipped)
            targets = data[-1] if data else None
            if targets is not None and len(targets) == 0:
                continue
            yield data[0] if len(data) == 1 else tuple(data)

    def summary(self, max_paths: int = 10, total: int | None = None) -> str:
        """Human-readable text: how many were skipped, counts by reason, and the first ``max_paths`` paths."""
        if not self._items:
            return "No samples skipped."
        of_total = f" of {total} ({100.0 * self.count / total:.2f}%)" if total else ""
        lines = [f"Skipped {self.count}{of_total} unreadable samples:"]
        lines += [f"  {n} x {reason}" for reason, n in self.by_reason().items()]
        shown = self._items[:max_paths]
        lines.append(f"First {len(shown)} of {self.count}:" if self.count > len(shown) else "Files:")
        lines += [f"  {item.path}: {item.reason}" + (f" ({item.detail})" if item.detail else "") for item in shown]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"SkipReport(count={self.count}, by_reason={self.by_reason()})"
