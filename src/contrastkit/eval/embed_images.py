"""Features of uint8 images, prepared the way an encoder's views were (resize, scale to [0, 1], normalise)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from contrastkit.data.image_preprocess import ImagePreprocess


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
    prepare = ImagePreprocess(int(size), len(mean), tuple(mean), tuple(std))
    out = []
    for start in range(0, len(images), batch_size):
        x = prepare.batch(images[start : start + batch_size].to(device))  # (b, C, S, S)
        out.append(embed(x).float().cpu())  # (b, D)
    return torch.cat(out) if out else torch.empty(0)
