"""Bringing any image to a square of a given side: shorter side resized (antialiased), then a centre crop."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_center_crop(image: Tensor, size: int, mode: str = "bilinear") -> Tensor:
    """uint8 ``(C, H, W)`` -> uint8 ``(C, size, size)``: shorter side resized to ``size`` (antialiased, ``mode``
    bilinear or bicubic), centre crop.

    On the CPU the interpolation runs on the uint8 pixels themselves (torch's integer antialiased kernels, the
    arithmetic of Pillow's ``Image.resize``: within 1 grey level of it, where interpolating floats and rounding
    differs from it by up to 1 (bilinear) or 4 (bicubic, whose overshoot is clipped), and about 3x as fast for a
    500 x 375 photograph; ``benchmarks/decode.py``). An image whose channels are the innermost dimension in memory
    (``torchvision.io.decode_jpeg``'s ``(C, H, W)`` view of ``(H, W, C)`` pixels) is read as it lies, without a copy.
    Elsewhere (a CUDA tensor) it interpolates float32 and rounds.
    """
    _, h, w = image.shape
    if (h, w) == (size, size):
        return image
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (nh - size) // 2, (nw - size) // 2
    if image.device.type == "cpu" and image.dtype == torch.uint8:
        x = F.interpolate(image[None], size=(nh, nw), mode=mode, antialias=True, align_corners=False)  # uint8
        return x[0, :, top : top + size, left : left + size].contiguous()  # (C, S, S)
    x = F.interpolate(image[None].float(), size=(nh, nw), mode=mode, antialias=True, align_corners=False)
    return x[0, :, top : top + size, left : left + size].round().clamp(0, 255).to(torch.uint8)  # (C, S, S)
