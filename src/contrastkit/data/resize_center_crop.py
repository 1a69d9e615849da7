"""Bringing any image to a square of a given side: shorter side resized (antialiased), then a centre crop."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_center_crop(image: Tensor, size: int, mode: str = "bilinear") -> Tensor:
    """uint8 ``(C, H, W)`` -> ``(C, size, size)``: shorter side resized to ``size`` (antialiased, ``mode`` bilinear
    or bicubic), centre crop."""
    _, h, w = image.shape
    if (h, w) != (size, size):
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        x = F.interpolate(image[None].float(), size=(nh, nw), mode=mode, antialias=True, align_corners=False)
        top, left = (nh - size) // 2, (nw - size) // 2
        image = x[0, :, top : top + size, left : left + size].round().clamp(0, 255).to(torch.uint8)  # (C, S, S)
    return image
