"""Several views of one image: a list of :class:`ViewSpec`, run per sample or on a whole batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import torch
from torch import Tensor

from contrastkit.views.sample_pipeline import build_transform
from contrastkit.views.view_spec import (
    GRAYSCALE_MEAN,
    GRAYSCALE_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ViewSpec,
    blur_kernel_size,
)

SMALL_INPUT_SIZE = 32  # recipes drop the gaussian blur at or below this size (SimCLR's CIFAR-10 setting)
_DEFAULTS = ViewSpec(size=1)


def normalisation(
    channels: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    rgb: tuple[tuple[float, ...], tuple[float, ...]] = (IMAGENET_MEAN, IMAGENET_STD),
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The recipes' ``mean`` and ``std``: the given ones, else ``rgb`` for 3 channels and (0.5,), (0.5,) for 1."""
    default_mean, default_std = rgb if channels == 3 else (GRAYSCALE_MEAN, GRAYSCALE_STD)
    return tuple(default_mean if mean is None else mean), tuple(default_std if std is None else std)


def colour_view(
    input_size: int,
    channels: int,
    *,
    crop_scale: Sequence[float],
    hflip_p: float,
    jitter: Sequence[float],
    jitter_p: float,
    grayscale_p: float,
    blur_p: float,
    blur_sigma: Sequence[float],
    mean: Sequence[float],
    std: Sequence[float],
    solarize_p: float = 0.0,
) -> ViewSpec:
    """One view of the SimCLR family (crop, flip, jitter, grayscale, blur, solarize), adapted to ``channels``.

    ``jitter`` is (brightness, contrast, saturation, hue); with 1 channel, saturation, hue and grayscale are off.
    The blur kernel is SimCLR's 10% of the view size.
    """
    rgb = channels == 3
    brightness, contrast, saturation, hue = jitter
    return ViewSpec(
        size=input_size,
        channels=channels,
        crop_scale=tuple(crop_scale),
        hflip_p=hflip_p,
        jitter_p=jitter_p,
        brightness=brightness,
        contrast=contrast,
        saturation=saturation if rgb else 0.0,
        hue=hue if rgb else 0.0,
        grayscale_p=grayscale_p if rgb else 0.0,
        blur_p=blur_p,
        blur_sigma=tuple(blur_sigma),
        blur_kernel=blur_kernel_size(input_size),
        solarize_p=solarize_p,
        mean=tuple(mean),
        std=tuple(std),
    )


def describe_spec(spec: ViewSpec) -> str:
    """A short repr of ``spec``: its size and the fields that differ from ViewSpec's defaults."""
    changed = [
        f"{f.name}={getattr(spec, f.name)!r}"
        for f in fields(ViewSpec)
        if f.name == "size" or getattr(spec, f.name) != getattr(_DEFAULTS, f.name)
    ]
    return f"ViewSpec({', '.join(changed)})"


class MultiViews:
    """A fixed list of views, each described by a :class:`ViewSpec`.

    Calling it on one image runs the per-sample torchvision pipelines (for a ``Dataset``'s transform); ``batch``
    runs the batched engine on a whole uint8 batch (on the training device). Both read the same specs. A plain
    class, not an ``nn.Module``, so it pickles cheaply into ``DataLoader`` workers.

    Args:
        specs: one :class:`ViewSpec` per view, in the order the views are returned.

    Attributes:
        specs: the views' specs, as a tuple.
        transforms: the per-sample pipeline of each spec (built once, by :func:`build_transform`).
    """

    def __init__(self, specs: Sequence[ViewSpec]) -> None:
        specs = tuple(specs)
        if not specs:
            raise ValueError("MultiViews needs at least one ViewSpec")
        for i, spec in enumerate(specs):
            if not isinstance(spec, ViewSpec):
                raise TypeError(f"specs[{i}] must be a ViewSpec, got {type(spec).__name__}")
        self.specs: tuple[ViewSpec, ...] = specs
        self.transforms = tuple(build_transform(spec) for spec in specs)

    def __call__(self, image: Any) -> list[Tensor]:
        """The views of one image.

        Args:
            image: a PIL image, a uint8 tensor (C, H, W) or a float tensor (C, H, W) in [0, 1]; 1 or 3 channels.

        Returns:
            One float32 tensor (spec.channels, spec.size, spec.size) per spec, normalised.
        """
        return [transform(image) for transform in self.transforms]

    def batch(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """The views of a whole batch, with per-sample random parameters, on the batch's device.

        Args:
            images: (B, C, H, W) uint8 images, C = 1 or 3.
            generator: CPU generator the random parameters are drawn from (None: the global one).

        Returns:
            One float32 tensor (B, spec.channels, spec.size, spec.size) per spec, normalised.
        """
        from contrastkit.views.batched import apply_view  # lazy: the batched engine is optional here

        return [apply_view(spec, images, generator) for spec in self.specs]

    def __len__(self) -> int:
        return len(self.specs)

    def __repr__(self) -> str:
        lines, start = [], 0  # runs of equal specs on one line: "[2-9] ViewSpec(...),"
        for i, spec in enumerate(self.specs):
            if i + 1 == len(self.specs) or self.specs[i + 1] != spec:
                index = f"{start}" if start == i else f"{start}-{i}"
                lines.append(f"  [{index}] {describe_spec(spec)},")
                start = i + 1
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"
