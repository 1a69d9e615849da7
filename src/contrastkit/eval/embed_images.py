"""Features of uint8 images, prepared the way an encoder's views were (resize, scale to [0, 1], normalise)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def embed_images(
    embed: Callable[[Tensor], Tensor],
    images: Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    size: int,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
) -> Tensor:
    """Features ``(N, D)`` float32 on the CPU of uint8 images ``(N, C, H, W)``, normalised as the views are.

    Images of another size are resized (bilinear, antialiased) to ``size``; ``embed`` runs under ``no_grad`` in
    batches of ``batch_size`` on ``device``.
    """
    mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device).float().div_(255)  # (b, C, H, W)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(embed((x - mean_t) / std_t).float().cpu())  # (b, D)
    return torch.cat(out) if out else torch.empty(0)
