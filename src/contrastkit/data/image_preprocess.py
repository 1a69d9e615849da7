"""How an encoder wants its images: size, channels, scaling and normalisation, as one callable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.data.multi_view_dataset import match_channels
from contrastkit.data.resize_center_crop import resize_center_crop
from contrastkit.views.view_spec import GRAYSCALE_MEAN, GRAYSCALE_STD, IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class ImagePreprocess:
    """Any image to the float tensor an encoder takes: channels converted, shorter side resized to ``size``
    (antialiased), centre crop, scaled to [0, 1], normalised with ``mean`` / ``std``.

    ``preprocess(image)`` takes one image (a PIL image, a ``(H, W)`` / ``(H, W, C)`` uint8 array, or a uint8
    tensor ``(C, H, W)``) and returns ``(C, size, size)``; ``preprocess.batch(images)`` takes uint8 ``(N, C, H, W)``
    and returns ``(N, C, size, size)``, the preparation the evaluation views apply. An encoder from
    :func:`contrastkit.load_encoder` carries its own as ``encoder.preprocess``.
    """

    size: int  # side of the square input
    in_chans: int  # 1 (grey) or 3 (RGB)
    mean: tuple[float, ...]  # per-channel mean subtracted after scaling to [0, 1]
    std: tuple[float, ...]  # per-channel std divided by
    interpolation: str = "bilinear"  # resize filter: bilinear or bicubic

    def __post_init__(self) -> None:
        if self.size < 1 or self.in_chans not in (1, 3):
            raise ValueError(f"ImagePreprocess needs size >= 1 and in_chans 1 or 3, got {self.size}, {self.in_chans}")
        if len(self.mean) != self.in_chans or len(self.std) != self.in_chans:
            raise ValueError(f"mean and std need {self.in_chans} values each, got {self.mean}, {self.std}")
        if self.interpolation not in ("bilinear", "bicubic"):
            raise ValueError(f"interpolation must be bilinear or bicubic, got {self.interpolation!r}")

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> ImagePreprocess:
        """The preprocessing an encoder file's metadata records (``input_size``, ``in_chans``, ``mean``, ``std``,
        ``interpolation``; ImageNet statistics where a file has none)."""
        chans = int(info.get("in_chans", 3))
        mean = info.get("mean") or (IMAGENET_MEAN if chans == 3 else GRAYSCALE_MEAN)
        std = info.get("std") or (IMAGENET_STD if chans == 3 else GRAYSCALE_STD)
        interpolation = str(info.get("interpolation", "bilinear"))
        return cls(
            int(info.get("input_size", 224)), chans, tuple(map(float, mean)), tuple(map(float, std)), interpolation
        )

    def _uint8(self, image: Any) -> Tensor:
        """One image as uint8 ``(C, H, W)`` with this encoder's channels."""
        if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
            image = np.asarray(image.convert("L" if self.in_chans == 1 else "RGB"))
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(np.array(image))  # a writable copy
            image = image[None] if image.ndim == 2 else image.permute(2, 0, 1)  # (C, H, W)
        if not isinstance(image, Tensor) or image.ndim != 3 or image.dtype != torch.uint8:
            raise TypeError("preprocess takes a PIL image, a uint8 array (H, W[, C]) or a uint8 tensor (C, H, W)")
        if image.shape[0] == 4:
            image = image[:3]  # RGBA -> RGB
        if image.shape[0] not in (1, 3):
            raise ValueError(f"an image with {image.shape[0]} channels cannot become {self.in_chans}")
        return match_channels(image, self.in_chans)  # grey <-> RGB (luma as PIL's "L")

    def __call__(self, image: Any) -> Tensor:
        x = self._uint8(image)  # (C, H, W) uint8
        x = resize_center_crop(x, self.size, self.interpolation)  # (C, S, S)
        return self.batch(x[None])[0]

    def batch(self, images: Tensor) -> Tensor:
        """uint8 ``(N, C, H, W)`` -> float ``(N, C, size, size)``, resized to the square (no crop) if needed."""
        x = images.float().div(255)  # (N, C, H, W)
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode=self.interpolation, antialias=True)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std  # (N, C, S, S)
