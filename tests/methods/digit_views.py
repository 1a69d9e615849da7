"""sklearn's digits as tiny two-view (or multi-crop) batches, and a short training loop, for the method tests."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor

from contrastkit.backbones import create_backbone
from contrastkit.methods import Method, Progress


def tiny_backbone() -> torch.nn.Module:
    """The small CNN, grayscale and narrow (8, 16, 32 channels) so CPU tests stay fast; features ``(B, 32)``."""
    return create_backbone("small_cnn", in_chans=1, widths=(8, 16, 32))


@lru_cache(maxsize=1)
def digit_images() -> Tensor:
    """All 1797 digits, 8x8 upsampled to ``(N, 1, 16, 16)`` float32 in [0, 1]."""
    images = torch.from_numpy(load_digits().images).float().unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    return F.interpolate(images, size=16, mode="bilinear", align_corners=False)  # (N, 1, 16, 16)


def augment(x: Tensor, size: int, scale: tuple[float, float], generator: torch.Generator) -> Tensor:
    """Random resized crop (area fraction in ``scale``), brightness/contrast jitter and noise, normalised."""
    b = x.shape[0]
    side = torch.empty(b).uniform_(*scale, generator=generator).sqrt()  # (B,) crop side / image side
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * (1 - side).unsqueeze(1)  # (B, 2) crop centre
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = side, side, shift
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)  # (B, size, size, 2)
    out = F.grid_sample(x, grid, align_corners=False)  # (B, C, size, size)
    contrast = torch.empty(b, 1, 1, 1).uniform_(0.8, 1.2, generator=generator)
    brightness = torch.empty(b, 1, 1, 1).uniform_(-0.1, 0.1, generator=generator)
    out = out * contrast + brightness + 0.05 * torch.randn(out.shape, generator=generator)
    return (out - 0.5) / 0.5


def two_views(x: Tensor, generator: torch.Generator) -> list[Tensor]:
    """Two 16x16 views of each image."""
    return [augment(x, 16, (0.6, 1.0), generator) for _ in range(2)]


def multi_crop(x: Tensor, generator: torch.Generator, num_local: int = 4) -> list[Tensor]:
    """DINO's order: two 16x16 global crops, then ``num_local`` 8x8 local crops."""
    views = [augment(x, 16, (0.4, 1.0), generator) for _ in range(2)]
    return views + [augment(x, 8, (0.1, 0.4), generator) for _ in range(num_local)]


@torch.no_grad()
def fixed_batch_loss(
    method: Method, make_views: Callable[[Tensor, torch.Generator], list[Tensor]] = two_views, n: int = 256
) -> float:
    """The loss (training mode: batch statistics) on the same ``n`` digits and views at every call."""
    generator = torch.Generator().manual_seed(1)
    images = digit_images()
    idx = torch.randperm(len(images), generator=generator)[:n]
    method.train()
    return method(make_views(images[idx], generator)).loss.item()


def train_on_digits(
    method: Method,
    make_views: Callable[[Tensor, torch.Generator], list[Tensor]] = two_views,
    steps: int = 30,
    batch_size: int = 32,
    lr: float = 0.05,
    steps_per_epoch: int = 10,
) -> list[float]:
    """``steps`` SGD steps on random digit batches with the trainer's hook order; returns the losses."""
    generator = torch.Generator().manual_seed(0)
    images = digit_images()
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    method.train()
    losses = []
    for step in range(steps):
        idx = torch.randint(len(images), (batch_size,), generator=generator)
        method.set_progress(Progress(step=step, total_steps=steps, epoch=step / steps_per_epoch))
        out = method(make_views(images[idx], generator))
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        method.before_optimizer_step()
        optimizer.step()
        method.after_optimizer_step()
        losses.append(out.loss.item())
    return losses
