"""JPEGs decoded on the training device: the workers read the files, one batched call decodes them where the
network runs (nvJPEG on a GPU, through ``torchvision.io.decode_jpeg(device=...)``).

On a GPU machine the CPU's part of the data path is then reading the file and its header; decoding (more than half
of the CPU's work per image once the resize is uint8) and the resize move to the GPU, next to the batched views.
Only what the CPU path decodes with libjpeg-turbo goes to the device (a baseline or progressive 8-bit JPEG of mode
L or RGB, read as RGB, or as L when it is grey and the run is grey); every other file (PNG, CMYK JPEGs, an RGB JPEG
for a grey run, which takes Pillow's luma) is decoded and resized in the workers as before, and a JPEG the device
decoder refuses is decoded again by the CPU path, which skips and names it if it is truly damaged. On the CPU (the
tests; ``device="cpu"``) the pixels equal the workers' exactly; nvJPEG's may differ from libjpeg's by a few levels.

Example::

    loader = DataLoader(UndecodedJpegs(ImageFolderDataset(root, channels=3), 224, 3), batch_size=256,
                        num_workers=8, collate_fn=collate_undecoded, pin_memory=True)
    for batch in loader:
        images, targets, skipped = decode_undecoded(batch, torch.device("cuda"), 224, 3)  # (B, 3, 224, 224) uint8
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from contrastkit.data.decode_image import is_plain_jpeg, reduced_scale
from contrastkit.data.multi_view_dataset import match_channels
from contrastkit.data.resize_center_crop import resize_center_crop
from contrastkit.data.skip_report import DECODE_ERRORS, Skipped, load_image_or_skip


class EncodedJpeg(NamedTuple):
    """One file's bytes, left for the device to decode (plain data: it pickles out of a worker)."""

    data: Tensor  # (L,) uint8, the whole file
    target: int  # class index, -1 when unlabelled
    path: str  # named when the file turns out to be unreadable


class UndecodedJpegs(Dataset):
    """Items of an image folder as :class:`EncodedJpeg` where the device can decode the file, else as the
    workers' ``(uint8 (channels, size, size), target)``, or :class:`Skipped`.

    Args:
        dataset: a data set listing ``samples`` as ``(path, target)`` (:class:`~contrastkit.data.ImageFolderDataset`).
        size: side of the square images the batches hold.
        channels: 1 or 3.
    """

    def __init__(self, dataset: Any, size: int, channels: int) -> None:
        if not isinstance(getattr(dataset, "samples", None), list):
            raise TypeError(f"{type(dataset).__name__} lists no files (samples): only folders can decode on the device")
        self.dataset, self.size, self.channels = dataset, size, channels

    def __len__(self) -> int:
        return len(self.dataset.samples)

    def __getitem__(self, index: int) -> EncodedJpeg | tuple[Tensor, int] | Skipped:
        path, target = self.dataset.samples[index]
        try:
            with open(path, "rb") as f:
                data = f.read()
            with Image.open(io.BytesIO(data)) as image:  # the header only: format, mode, size, bomb check
                device_can = (
                    is_plain_jpeg(data, image)
                    and (self.channels == 3 or image.mode == "L")
                    and reduced_scale(image, self.size) == 1  # a large one decodes at a reduced scale on the CPU
                )
        except DECODE_ERRORS:  # unreadable, empty, not an image: the CPU path reads it again and names it as ever
            return load_image_or_skip(path, self.channels)
        if device_can:
            return EncodedJpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), target, path)
        image = load_image_or_skip(data, self.channels, name=path, min_side=self.size)
        if isinstance(image, Skipped):
            return image
        return resize_center_crop(match_channels(image, self.channels), self.size), target


class UndecodedBatch(NamedTuple):
    """A batch as the workers leave it: images they decoded, files the device decodes, in the batch's order."""

    images: list[Tensor]  # uint8 (C, S, S) each, decoded by the workers
    encoded: list[Tensor]  # (L,) uint8 each, JPEG files
    names: list[str]  # the encoded files' paths
    is_encoded: list[bool]  # per kept item, in order: which list its next entry comes from
    targets: list[int]  # per kept item
    skipped: list[tuple[str, str, str]]  # (path, reason, detail) of the items the workers could not read


def collate_undecoded(batch: Sequence[Any]) -> UndecodedBatch:
    """An :class:`UndecodedBatch` from :class:`UndecodedJpegs` items (the DataLoader's ``collate_fn``)."""
    images, encoded, names, is_encoded, targets, skipped = [], [], [], [], [], []
    for item in batch:
        if isinstance(item, Skipped):
            skipped.append((item.path, item.reason, item.detail))
        elif isinstance(item, EncodedJpeg):
            encoded.append(item.data)
            names.append(item.path)
            is_encoded.append(True)
            targets.append(int(item.target))
        else:
            image, target = item
            images.append(image)
            is_encoded.append(False)
            targets.append(int(target) if isinstance(target, int) else -1)
    return UndecodedBatch(images, encoded, names, is_encoded, targets, skipped)


def decode_undecoded(
    batch: UndecodedBatch, device: torch.device, size: int, channels: int
) -> tuple[Tensor, Tensor, list[tuple[str, str, str]]]:
    """``(images uint8 (B, channels, size, size) on device, targets (B,), skipped)``: the batch's JPEGs decoded in
    one call on ``device``, each brought to ``size`` (shorter side, centre crop) there, merged with the workers'
    images in the batch's order. A JPEG the device refuses is decoded by the CPU path; one that cannot be read at
    all is left out and listed in ``skipped`` with the workers' own."""
    decoded = _decode_all(batch.encoded, batch.names, device, channels)
    skipped = list(batch.skipped)
    images: list[Tensor] = []
    targets: list[int] = []
    workers_done, files = iter(batch.images), iter(decoded)
    for encoded, target in zip(batch.is_encoded, batch.targets, strict=True):
        if not encoded:
            images.append(next(workers_done).to(device, non_blocking=True))
            targets.append(target)
            continue
        image = next(files)
        if isinstance(image, Skipped):
            skipped.append((image.path, image.reason, image.detail))
            continue
        images.append(resize_center_crop(image, size))  # (C, S, S) on device
        targets.append(target)
    if not images:
        empty = torch.empty(0, channels, size, size, dtype=torch.uint8, device=device)
        return empty, torch.empty(0, dtype=torch.long), skipped
    return torch.stack(images), torch.tensor(targets, dtype=torch.long), skipped


def _decode_all(encoded: list[Tensor], names: list[str], device: torch.device, channels: int) -> list[Tensor | Skipped]:
    """Each file decoded on ``device``: one batched call, or, when it refuses the batch (one damaged file fails
    it whole), file by file, with the CPU path for those it still refuses."""
    if not encoded:
        return []
    from torchvision.io import ImageReadMode, decode_jpeg

    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for TorchCodec; they still work
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return list(decode_jpeg(encoded, mode=mode, device=device))  # (C, H, W) each, on device
        except RuntimeError:
            pass
        results: list[Tensor | Skipped] = []
        for data, name in zip(encoded, names, strict=True):
            try:
                results.append(decode_jpeg(data, mode=mode, device=device))
            except RuntimeError:
                image = load_image_or_skip(data.numpy().tobytes(), channels, name=name)  # Pillow decides, names it
                results.append(image if isinstance(image, Skipped) else image.to(device))
        return results
