"""The per-sample view engine: one :class:`ViewSpec` as a ``torchvision.transforms.v2`` pipeline for one image.

The pipeline first fixes the channel count (a grayscale image is repeated to 3 channels for an RGB spec, an RGB
image reduced to its luma for a grayscale spec) and makes a tensor image, then runs the spec's steps in order on
the image's own dtype: uint8 for PIL images and uint8 tensors, float for float tensors in [0, 1]. Only the
solarize threshold depends on that dtype, so it is rescaled per image (see :class:`RandomSolarizeFraction`).
"""

from __future__ import annotations

import math
from typing import Any

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from contrastkit.views.view_spec import ViewSpec

_LUMA = (0.2989, 0.587, 0.114)  # ITU-R 601-2, as torchvision's rgb_to_grayscale and the batched engine


class ToChannels(v2.Transform):
    """Give an image ``channels`` channels: 1 -> 3 repeats, 3 -> 1 takes the luma, an alpha channel is dropped.

    PIL images in another mode than "L" or "RGB" (palette, RGBA, CMYK, ...) are converted to "RGB" first. The luma
    of a uint8 image is rounded to the nearest integer (torchvision's ``rgb_to_grayscale`` truncates).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.channels = channels

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, PIL.Image.Image):
            if inpt.mode not in ("L", "RGB"):
                inpt = inpt.convert("RGB")
            inpt = F.pil_to_tensor(inpt)  # (C, H, W) uint8
        image = inpt.as_subclass(torch.Tensor)  # (..., C, H, W)
        c = image.shape[-3] if image.ndim >= 3 else 0
        if c in (2, 4):
            image, c = image[..., : c - 1, :, :], c - 1  # drop alpha
        if c not in (1, 3):
            raise ValueError(f"expected an image with 1 or 3 channels (C, H, W), got shape {tuple(inpt.shape)}")
        if c == 1 and self.channels == 3:
            image = image.expand(*image.shape[:-3], 3, *image.shape[-2:]).contiguous()  # (..., 3, H, W)
        elif c == 3 and self.channels == 1:
            weights = torch.tensor(_LUMA, dtype=torch.float32, device=image.device).view(3, 1, 1)
            luma = (image.to(torch.float32) * weights).sum(dim=-3, keepdim=True)  # (..., 1, H, W)
            if image.is_floating_point():
                image = luma.to(image.dtype)
            else:
                image = luma.round_().clamp_(0, torch.iinfo(image.dtype).max).to(image.dtype)
        return tv_tensors.Image(image)


class RandomSolarizeFraction(v2.RandomSolarize):
    """``v2.RandomSolarize`` with the threshold given as a fraction of the image's value range.

    v2.RandomSolarize compares pixels with its threshold in the image's own range (255 for uint8, 1 for float).
    Here a fraction ``t`` in [0, 1] becomes ``t`` for float images and ``ceil(t * max)`` for integer ones (128 for
    0.5 and uint8): the pixels inverted are exactly those whose value divided by ``max`` is ``>= t``, as in the
    batched engine, which solarizes float images in [0, 1].
    """

    def __init__(self, threshold: float, p: float = 0.5) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a fraction in [0, 1], got {threshold}")
        super().__init__(threshold=threshold, p=p)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, PIL.Image.Image):
            threshold = math.ceil(self.threshold * 255 - 1e-9)
        elif inpt.is_floating_point():
            threshold = self.threshold
        else:
            threshold = math.ceil(self.threshold * torch.iinfo(inpt.dtype).max - 1e-9)
        return self._call_kernel(F.solarize, inpt, threshold=threshold)


def build_transform(spec: ViewSpec) -> v2.Compose:
    """The per-sample pipeline of one view: PIL image or tensor (C, H, W) -> float32 (spec.channels, size, size).

    Steps: channel fix, ``ToImage``, crop (``RandomResizedCrop``, or ``Resize`` + ``CenterCrop``), horizontal flip,
    colour jitter, grayscale, gaussian blur, solarize, ``ToDtype(float32, scale=True)``, ``Normalize`` (then a plain
    tensor, not a ``tv_tensors.Image``). Random steps
    whose probability is 0 are left out; with 1 channel, saturation, hue and grayscale are left out too.

    Args:
        spec: the view.

    Returns:
        A ``v2.Compose`` that accepts PIL images (any mode), uint8 tensors and float tensors in [0, 1], each with
        1 or 3 channels (or 2 / 4 with alpha), and returns the normalised view as a float32 tensor.
    """
    rgb = spec.channels == 3
    steps: list[v2.Transform] = [ToChannels(spec.channels), v2.ToImage()]
    if spec.random_crop:
        steps.append(v2.RandomResizedCrop(spec.size, scale=spec.crop_scale, ratio=spec.crop_ratio, antialias=True))
    else:
        steps += [v2.Resize(spec.resize or spec.size, antialias=True), v2.CenterCrop(spec.size)]
    if spec.hflip_p > 0:
        steps.append(v2.RandomHorizontalFlip(spec.hflip_p))
    saturation, hue = (spec.saturation, spec.hue) if rgb else (0.0, 0.0)
    if spec.jitter_p > 0 and max(spec.brightness, spec.contrast, saturation, hue) > 0:
        jitter = v2.ColorJitter(spec.brightness, spec.contrast, saturation, hue)
        steps.append(v2.RandomApply([jitter], p=spec.jitter_p))
    if rgb and spec.grayscale_p > 0:
        steps.append(v2.RandomGrayscale(spec.grayscale_p))
    if spec.blur_p > 0:
        steps.append(v2.RandomApply([v2.GaussianBlur(spec.blur_kernel, spec.blur_sigma)], p=spec.blur_p))
    if spec.solarize_p > 0:
        steps.append(RandomSolarizeFraction(spec.solarize_threshold, p=spec.solarize_p))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(spec.mean), list(spec.std)), v2.ToPureTensor()]
    return v2.Compose(steps)
