"""The batched view engine: one :class:`ViewSpec` applied to a whole uint8 batch at once, on the batch's device.

Every sample gets its own random parameters, drawn as torchvision's per-sample transforms draw them (the tests
compare the distributions), but every step runs on the whole batch at once, so augmentation stops being the
input pipeline's bottleneck on small images and runs on the GPU when the batch is there. The recipe is the
augmentation of SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
Representations"): random resized crop, horizontal flip, colour jitter in a random order, random grayscale and
gaussian blur, plus solarisation (BYOL) and normalisation.

Parameters are drawn on the CPU with the given ``torch.Generator`` (a CPU generator) and then moved, so a seed
gives the same views on every device. Given its parameters, each sample is what torchvision's float ops give
(``render_view``; tested op by op). Differences from the per-sample engine (``build_transform``):

* everything is float32 in [0, 1]; the per-sample engine works on uint8 until ``ToDtype`` and rounds to 1/255
  after each step (its uint8 resize also uses 16-bit fixed-point weights, and its 3 -> 1 luma is rounded);
* the crop is resampled with exact float antialias weights (``batched_ops.batched_resample``): bilinear
  ``grid_sample`` for samples that are not downscaled (antialiasing is then a no-op), separable antialias taps for
  those that are;
* hue goes back from HSV by a closed form instead of torchvision's table (differences about 1e-6);
* the random streams differ: same distributions, not the same draws as torchvision's global RNG.

Two orderings make the random parts cheap. Samples are sorted by (blur applied, colour-jitter order), so each of
the 24 jitter orders (and "no jitter") is a contiguous slice that its four ops run on in turn, in place, and the
blurred samples are one contiguous slice: a step costs what it costs on the samples it applies to, and the Python
loop runs over groups, never over samples. On the CPU the sorted batch is then processed in chunks of about
``CPU_CHUNK_ELEMENTS`` floats, which keeps temporaries in cache and out of fresh pages (at 224 pixels, first-touch
page faults of whole-batch temporaries cost more than the arithmetic); on other devices the batch is one chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from contrastkit.views import batched_ops as ops
from contrastkit.views.view_spec import ViewSpec

CPU_CHUNK_ELEMENTS = 1 << 21  # floats per chunk of the view batch on the CPU (about 8 MiB)
_NO_JITTER = 255  # sort key of the samples that skip colour jitter (jitter order codes are < 255)


@dataclass
class ViewParams:
    """The random parameters of one batched view, one row per sample, all on the CPU."""

    boxes: Tensor | None  # (B, 4) int64 crop top, left, height, width (None: resize + centre crop)
    flip: Tensor  # (B,) bool horizontal flip
    jitter: Tensor  # (B,) bool colour jitter applied
    jitter_order: Tensor  # (B, 4) int64 permutation of 0 brightness, 1 contrast, 2 saturation, 3 hue
    jitter_factors: Tensor  # (B, 4) float64 brightness, contrast, saturation factors and hue shift
    grayscale: Tensor  # (B,) bool
    blur: Tensor  # (B,) bool
    blur_sigma: Tensor  # (B,) float64
    solarize: Tensor  # (B,) bool


def sample_crop_boxes(
    spec_or_params: ViewSpec | tuple[tuple[float, float], tuple[float, float]],
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random resized crop boxes with torchvision's ``RandomResizedCrop`` sampling, for a whole batch at once.

    As torchvision: area fraction uniform in ``scale``, log aspect ratio uniform in ``log(ratio)``, side lengths
    rounded, the first of 10 attempts that fits the image is kept, else the centre crop clamped to ``ratio``; top
    and left uniform over the valid positions. All 10 attempts of every sample are drawn at once and the first
    valid one is picked with ``argmax``, which draws the same distribution as the sequential loop.

    Args:
        spec_or_params: a :class:`ViewSpec` (its ``crop_scale`` and ``crop_ratio``) or ``(scale, ratio)``.
        batch, height, width: number of boxes and the images' size.
        generator: CPU generator (None: the global one).

    Returns:
        (B, 4) int64 on the CPU: top, left, height, width.
    """
    if isinstance(spec_or_params, ViewSpec):
        scale, ratio = spec_or_params.crop_scale, spec_or_params.crop_ratio
    else:
        scale, ratio = spec_or_params
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    u = torch.rand(batch, 10, 2, generator=generator, dtype=torch.float64)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * u[..., 0])  # (B, 10)
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
    w = torch.round(torch.sqrt(area * aspect))
    h = torch.round(torch.sqrt(area / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first attempt that fits (0 if none)
    w, h = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0]  # (B,)
    pos = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
    top = torch.floor(pos[:, 0] * (height - h + 1))
    left = torch.floor(pos[:, 1] * (width - w + 1))
    in_ratio = width / height  # fallback: the centre crop, clamped to the ratio range
    fw, fh = width, height
    if in_ratio < min(ratio):
        fh = round(fw / min(ratio))
    elif in_ratio > max(ratio):
        fw = round(fh * max(ratio))
    fallback = torch.tensor([(height - fh) // 2, (width - fw) // 2, fh, fw], dtype=torch.float64)
    boxes = torch.stack([top, left, h, w], dim=1)
    return torch.where(fits.any(dim=1, keepdim=True), boxes, fallback).to(torch.int64)


def sample_view_params(
    spec: ViewSpec, batch: int, height: int, width: int, generator: torch.Generator | None = None
) -> ViewParams:
    """Draw every per-sample parameter of ``spec``'s view for a batch of ``height`` x ``width`` images (CPU).

    Probabilities, factor ranges and the uniform random order of the jitter ops follow torchvision's
    ``RandomApply``, ``RandomHorizontalFlip``, ``ColorJitter`` (brightness range clipped at 0), ``RandomGrayscale``,
    ``GaussianBlur`` and ``RandomSolarize``.
    """
    boxes = sample_crop_boxes(spec, batch, height, width, generator) if spec.random_crop else None
    u = torch.rand(batch, 6, generator=generator, dtype=torch.float64)
    order = torch.rand(batch, 4, generator=generator, dtype=torch.float64).argsort(dim=1)  # uniform permutations
    f = torch.rand(batch, 4, generator=generator, dtype=torch.float64)
    lo = torch.tensor(
        [max(0.0, 1 - spec.brightness), max(0.0, 1 - spec.contrast), max(0.0, 1 - spec.saturation), -spec.hue],
        dtype=torch.float64,
    )
    hi = torch.tensor([1 + spec.brightness, 1 + spec.contrast, 1 + spec.saturation, spec.hue], dtype=torch.float64)
    lo_sigma, hi_sigma = spec.blur_sigma
    return ViewParams(
        boxes=boxes,
        flip=u[:, 0] < spec.hflip_p,
        jitter=u[:, 1] < spec.jitter_p,
        jitter_order=order,
        jitter_factors=lo + (hi - lo) * f,
        grayscale=u[:, 2] < spec.grayscale_p,
        blur=u[:, 3] < spec.blur_p,
        blur_sigma=lo_sigma + (hi_sigma - lo_sigma) * u[:, 4],
        solarize=u[:, 5] < spec.solarize_p,
    )


def _geometry(spec: ViewSpec, params: ViewParams, batch: int, height: int, width: int) -> tuple[tuple, tuple]:
    """Per-axis ``(start, length, out_len, offset)`` (B,) float64 of the crop-and-resize, for batched_resample."""
    if params.boxes is not None:
        b = params.boxes.to(torch.float64)
        out, zero = torch.full((batch,), float(spec.size), dtype=torch.float64), torch.zeros(batch, dtype=torch.float64)
        return (b[:, 0], b[:, 2], out, zero), (b[:, 1], b[:, 3], out, zero)
    short = spec.resize or spec.size  # v2.Resize(short side) then v2.CenterCrop(size), zero-padded if too small
    new_w, new_h = (short, int(short * height / width)) if width <= height else (int(short * width / height), short)

    def axis(length: int, new: int) -> tuple[Tensor, ...]:
        offset = round((new - spec.size) / 2.0) if spec.size <= new else -((spec.size - new) // 2)
        return tuple(torch.full((batch,), float(v), dtype=torch.float64) for v in (0, length, new, offset))

    return axis(height, new_h), axis(width, new_w)


def _jitter_ops(spec: ViewSpec, channels: int) -> dict[int, Callable[[Tensor, Tensor], Tensor]]:
    """The colour jitter ops that can change an image, by their ColorJitter index."""
    use = {
        0: spec.brightness > 0,
        1: spec.contrast > 0,
        2: spec.saturation > 0 and channels == 3,
        3: spec.hue > 0 and channels == 3,
    }
    fns = {0: ops.adjust_brightness_, 1: ops.adjust_contrast_, 2: ops.adjust_saturation_, 3: ops.adjust_hue_}
    return {i: fns[i] for i in range(4) if use[i] and spec.jitter_p > 0}


def render_view(spec: ViewSpec, images: Tensor, params: ViewParams) -> Tensor:
    """Apply ``spec`` to ``images`` (B, C, H, W; uint8, or float in [0, 1]) with the given per-sample ``params``.

    ``params`` come from :func:`sample_view_params`; sample i is then what torchvision's float functional ops give
    for image i with parameters i (crop, flip, the four jitter ops in their order, grayscale, blur, solarize,
    normalise), to about 1e-5.

    Returns:
        (B, spec.channels, spec.size, spec.size) float32 normalised views on images' device.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (B, 1 or 3, H, W), got {tuple(images.shape)}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise TypeError(f"images must be uint8 or float in [0, 1], got {images.dtype}")
    batch, in_channels, height, width = images.shape
    device, size = images.device, spec.size
    out = torch.empty(batch, spec.channels, size, size, dtype=torch.float32, device=device)
    if batch == 0:
        return out
    jitter_ops = _jitter_ops(spec, spec.channels)
    blur = params.blur & (spec.blur_p > 0)
    o = params.jitter_order
    code = o[:, 0] * 64 + o[:, 1] * 16 + o[:, 2] * 4 + o[:, 3]
    key = blur.long() * 256 + torch.where(params.jitter & bool(jitter_ops), code, _NO_JITTER)
    order = key.argsort(stable=True)  # (B,) samples sorted by (blur, jitter order)
    key = key[order]
    rows, cols = _geometry(spec, params, batch, height, width)
    rows, cols = tuple(v[order] for v in rows), tuple(v[order] for v in cols)
    flip = params.flip[order] & (spec.hflip_p > 0)
    per_sample = torch.cat([params.jitter_factors, params.blur_sigma[:, None]], dim=1)[order]
    per_sample = per_sample.to(device=device, dtype=torch.float32)  # (B, 5), one host-to-device copy
    gray, solarize = params.grayscale[order] & (spec.grayscale_p > 0), params.solarize[order] & (spec.solarize_p > 0)
    order_dev = order.to(device)
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    work_channels = 1 if in_channels == 1 or spec.channels == 1 else 3
    chunk = batch
    if device.type == "cpu":
        chunk = max(1, CPU_CHUNK_ELEMENTS // (work_channels * max(size * size, height * width)))
    for s in range(0, batch, chunk):
        e = min(batch, s + chunk)
        x = images.index_select(0, order_dev[s:e])  # (b, C_in, H, W)
        x = x.to(torch.float32).mul_(1.0 / 255) if images.dtype == torch.uint8 else x.float()  # as v2.ToDtype
        if in_channels == 3 and spec.channels == 1:
            x = ops.batched_rgb_to_grayscale(x)  # linear, so taking the luma before the resize is exact
        x = ops.batched_resample(x, tuple(v[s:e] for v in rows), tuple(v[s:e] for v in cols), size, flip[s:e])
        if x.shape[1] != spec.channels:
            x = x.repeat(1, spec.channels, 1, 1)  # (b, C, S, S)
        x = _colour_jitter(x, key[s:e], per_sample[s:e], jitter_ops)
        if spec.channels == 3 and gray[s:e].any():
            i = gray[s:e].nonzero()[:, 0].to(device)
            x.index_copy_(0, i, ops.batched_rgb_to_grayscale(x.index_select(0, i)).expand(-1, 3, -1, -1))
        n_blur = int((key[s:e] >= 256).sum())
        if n_blur:
            x[-n_blur:] = ops.batched_gaussian_blur(x[-n_blur:], spec.blur_kernel, per_sample[e - n_blur : e, 4])
        if solarize[s:e].any():
            i = solarize[s:e].nonzero()[:, 0].to(device)
            x.index_copy_(0, i, ops.batched_solarize(x.index_select(0, i), spec.solarize_threshold))
        out.index_copy_(0, order_dev[s:e], x.sub_(mean).div_(std))
    return out


def _colour_jitter(
    x: Tensor, key: Tensor, factors: Tensor, jitter_ops: dict[int, Callable[[Tensor, Tensor], Tensor]]
) -> Tensor:
    """Colour jitter of a chunk sorted by jitter order: each group of samples runs its four ops in its order."""
    if not jitter_ops:
        return x
    groups, counts = torch.unique_consecutive(key % 256, return_counts=True)
    start = 0
    for code, count in zip(groups.tolist(), counts.tolist(), strict=True):
        if code != _NO_JITTER:
            for op in (code // 64, code // 16 % 4, code // 4 % 4, code % 4):
                if op in jitter_ops:
                    jitter_ops[op](x[start : start + count], factors[start : start + count, op])  # in place
        start += count
    return x


def apply_view(spec: ViewSpec, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One random view of every image of a batch, with per-sample random parameters, fully batched.

    Args:
        spec: the view (crop, flip, colour jitter, grayscale, blur, solarize, normalise).
        images: (B, C, H, W) uint8 (or float in [0, 1]) on any device; C = 1 is repeated to 3 channels and C = 3
            reduced to its luma when ``spec.channels`` asks.
        generator: CPU generator the parameters are drawn from (None: the global one), so results are
            reproducible across devices.

    Returns:
        (B, spec.channels, spec.size, spec.size) float32 normalised views on images' device.
    """
    params = sample_view_params(spec, images.shape[0], images.shape[-2], images.shape[-1], generator)
    return render_view(spec, images, params)
