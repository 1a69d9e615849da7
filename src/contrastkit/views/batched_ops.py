"""Batched image ops with one parameter per sample: the functional core of ``contrastkit.views.batched``.

Every op takes a float batch ``(B, C, H, W)`` with values in [0, 1] and per-sample parameters of shape ``(B,)``,
and for each sample computes what the same op of ``torchvision.transforms.v2.functional`` computes on a float
image with that sample's parameter (the tests check this sample by sample). No op loops over samples in Python.
These are the augmentations of SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
Representations"), in the form torchvision gives them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LUMA = (0.2989, 0.587, 0.114)  # ITU-R 601-2 weights, as torchvision's rgb_to_grayscale


def _per_sample(values: Tensor | float, x: Tensor) -> Tensor:
    """``values`` of shape (B,) as (B, 1, 1, 1) on x's device and dtype, to broadcast over a (B, C, H, W) batch."""
    return torch.as_tensor(values, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)


# ----------------------------------------------------------------------------------------------------- geometry


def source_coordinates(start: Tensor, length: Tensor, out_len: Tensor, offset: Tensor, size: int) -> Tensor:
    """Bilinear source coordinates of a resize along one axis, as ``interpolate(align_corners=False)`` takes them.

    Sample b resizes the window ``[start, start + length)`` of the input to ``out_len`` pixels and keeps outputs
    ``offset .. offset + size - 1`` of that (the centre crop after a resize; 0 for a resized crop).

    Args:
        start, length, out_len, offset: (B,) float64 on the CPU.
        size: number of output pixels.

    Returns:
        (B, size) float64: the input coordinate each output pixel reads, clamped into the window as
        ``interpolate`` clamps it (so pixels outside the window never bleed in); NaN where the output lies
        outside the resized image (zero padding of an oversized centre crop).
    """
    r = torch.arange(size, dtype=torch.float64) + offset[:, None]  # (B, S) index in the resized image
    src = (r + 0.5) * (length / out_len)[:, None] - 0.5
    src = torch.minimum(src.clamp(min=0.0), (length - 1)[:, None]) + start[:, None]
    return src.masked_fill((r < 0) | (r >= out_len[:, None]), math.nan)


def antialias_taps(start: Tensor, length: Tensor, out_len: Tensor, offset: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Taps of torchvision's antialiased bilinear resize along one axis: input index and weight per output pixel.

    The weights are those of ``torch.nn.functional.interpolate(mode="bilinear", antialias=True)`` (ATen's
    ``_compute_weights_aa``: a triangle filter widened by the scale factor when downscaling, clipped to the window,
    renormalised), so ``sum_k w[..., k] * x[idx[..., k]]`` is that resize of the window (same arguments as
    :func:`source_coordinates`; upscaling gives the two taps of plain bilinear).

    Returns:
        idx (B, size, K) int64 input indices and w (B, size, K) float64 weights, K the most taps any output needs;
        unused taps and outputs outside the resized image have weight 0.
    """
    scale = (length / out_len)[:, None, None]  # (B, 1, 1)
    support = torch.where(scale >= 1.0, scale, 1.0)
    invscale = torch.where(scale >= 1.0, 1.0 / scale, 1.0)
    r = torch.arange(size, dtype=torch.float64)[None, :, None] + offset[:, None, None]  # (B, S, 1)
    center = scale * (r + 0.5)
    xmin = torch.trunc(center - support + 0.5).clamp(min=0.0)
    xmax = torch.minimum(torch.trunc(center + support + 0.5), length[:, None, None])
    j = xmin + torch.arange(int((xmax - xmin).max()), dtype=torch.float64)  # (B, S, K) window coordinates
    w = (1.0 - ((j - center + 0.5) * invscale).abs()).clamp(min=0.0) * (j < xmax)
    total = w.sum(-1, keepdim=True)
    w = torch.where(total > 0, w / total.clamp(min=1e-300), 0.0) * ((r >= 0) & (r < out_len[:, None, None]))
    return (torch.minimum(j, (length - 1)[:, None, None]) + start[:, None, None]).long(), w


def _resample_bilinear(images: Tensor, rows: tuple[Tensor, ...], cols: tuple[Tensor, ...], size: int, flip: Tensor):
    """The no-downscaling case of :func:`batched_resample`: one ``grid_sample`` call."""
    b, _, h, w = images.shape
    ys = source_coordinates(*rows, size)  # (B, S)
    xs = source_coordinates(*cols, size)
    xs = torch.where(flip[:, None], xs.flip(1), xs)
    pad = bool(ys.isnan().any() or xs.isnan().any())
    gy = ((2.0 * ys + 1.0) / h - 1.0).nan_to_num(nan=-4.0)  # align_corners=False normalisation; NaN: outside
    gx = ((2.0 * xs + 1.0) / w - 1.0).nan_to_num(nan=-4.0)
    gxy = torch.cat([gx, gy], dim=1).to(device=images.device, dtype=images.dtype)  # (B, 2 S)
    grid = torch.empty(b, size, size, 2, dtype=images.dtype, device=images.device)  # (B, S, S, 2): x, y
    grid[..., 0] = gxy[:, None, :size]
    grid[..., 1] = gxy[:, size:, None]
    mode = "zeros" if pad else "border"
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=mode, align_corners=False)


def _filter_rows(images: Tensor, idx: Tensor, weights: Tensor) -> Tensor:
    """``out[b, c, s] = sum_k weights[b, s, k] * images[b, c, idx[b, s, k]]`` on (B, C, L, M), rows of M values.

    Each tap is one ``index_select`` of whole rows (a memcpy per row) and one fused multiply-add: O(K) work per
    output value, where a dense resampling matrix costs O(L).
    """
    b, c, length, m = images.shape
    size, taps = idx.shape[1:]
    flat = images.reshape(b * c * length, m)
    rows = (torch.arange(b * c, device=images.device) * length).view(b, c, 1, 1) + idx.to(images.device)[:, None]
    weights = weights.to(device=images.device, dtype=images.dtype)[:, None, :, :, None]  # (B, 1, S, K, 1)
    out, tap = None, None
    for k in range(taps):
        tap = torch.index_select(flat, 0, rows[..., k].reshape(-1), out=tap)  # (B C S, M)
        if out is None:
            out = tap.view(b, c, size, m) * weights[:, :, :, k]
        else:
            out.addcmul_(tap.view(b, c, size, m), weights[:, :, :, k])
    return out


def _resample_antialias(images: Tensor, rows: tuple[Tensor, ...], cols: tuple[Tensor, ...], size: int, flip: Tensor):
    """The downscaling case of :func:`batched_resample`: separable filtering with :func:`antialias_taps`."""
    ix, wx = antialias_taps(*cols, size)
    ix, wx = torch.where(flip[:, None, None], ix.flip(1), ix), torch.where(flip[:, None, None], wx.flip(1), wx)
    t = _filter_rows(images, *antialias_taps(*rows, size))  # (B, C, S, W)
    t = _filter_rows(t.transpose(2, 3).contiguous(), ix, wx)  # (B, C, S_x, S_y)
    return t.transpose(2, 3).contiguous()  # (B, C, S, S)


def batched_resample(
    images: Tensor, rows: tuple[Tensor, ...], cols: tuple[Tensor, ...], size: int, flip: Tensor | None = None
) -> Tensor:
    """Resize a window of each image to ``size`` x ``size`` (bilinear, antialiased like torchvision), per sample.

    Samples that are not downscaled on either axis (all crops of images no larger than the view) need no
    antialiasing, torchvision's ``antialias=True`` being then plain bilinear: they go through one ``grid_sample``
    call, with the source coordinates of :func:`source_coordinates` (clamped to each crop window, as torchvision's
    crop-then-resize reads it). Downscaled samples are filtered separably with the antialias taps of
    :func:`antialias_taps` (rows, transpose, rows), exact where a bilinear ``grid_sample`` would alias; about 2-3x
    the time of ``grid_sample``. The path depends on the sample only, not on the rest of its batch.

    Args:
        images: (B, C, H, W) float.
        rows, cols: ``(start, length, out_len, offset)``, each (B,) float64 on the CPU, for the y and x axes.
        size: output height and width.
        flip: (B,) bool on the CPU: flip these outputs horizontally (free: the x coordinates are reversed).

    Returns:
        (B, C, size, size) float, on images' device.
    """
    b, c = images.shape[:2]
    flip = torch.zeros(b, dtype=torch.bool) if flip is None else flip
    down = (rows[1] > rows[2]) | (cols[1] > cols[2])  # (B,) on the CPU
    if not down.any():
        return _resample_bilinear(images, rows, cols, size, flip)
    if down.all():
        return _resample_antialias(images, rows, cols, size, flip)
    out = torch.empty(b, c, size, size, dtype=images.dtype, device=images.device)
    for path, select in ((_resample_bilinear, ~down), (_resample_antialias, down)):
        i = select.nonzero()[:, 0]
        part = path(images[i.to(images.device)], tuple(v[i] for v in rows), tuple(v[i] for v in cols), size, flip[i])
        out[i.to(images.device)] = part
    return out


def batched_resized_crop(images: Tensor, boxes: Tensor, size: int, flip: Tensor | None = None) -> Tensor:
    """Crop ``boxes`` (B, 4: top, left, height, width; on the CPU) out of each image and resize it to ``size``.

    Per sample equal to ``v2.functional.resized_crop(image, *box, [size, size], antialias=True)`` on a float
    image (then flipped where ``flip``): the random resized crop of SimCLR (Chen et al. 2020).
    """
    boxes = boxes.to(torch.float64)
    out = torch.full_like(boxes[:, 0], float(size))
    zero = torch.zeros_like(out)
    return batched_resample(
        images, (boxes[:, 0], boxes[:, 2], out, zero), (boxes[:, 1], boxes[:, 3], out, zero), size, flip
    )


def batched_hflip(images: Tensor, mask: Tensor) -> Tensor:
    """Flip the samples selected by ``mask`` (B,) left to right."""
    return torch.where(_per_sample(mask, images).bool(), images.flip(-1), images)


# ------------------------------------------------------------------------------------------------------ colour


def batched_rgb_to_grayscale(images: Tensor) -> Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma, as torchvision computes it for float images."""
    r, g, b = images.unbind(dim=-3)
    return r.mul(LUMA[0]).add_(g, alpha=LUMA[1]).add_(b, alpha=LUMA[2]).unsqueeze(-3)


def _blend_(images: Tensor, other: Tensor, ratio: Tensor) -> Tensor:
    """In place ``images * ratio + other * (1 - ratio)`` clamped to [0, 1], ratio (B, 1, 1, 1): torchvision's _blend."""
    return images.mul_(ratio).add_(other.mul(1.0 - ratio)).clamp_(0.0, 1.0)


def adjust_brightness_(images: Tensor, factor: Tensor) -> Tensor:
    """In-place :func:`batched_adjust_brightness`."""
    return images.mul_(_per_sample(factor, images)).clamp_(0.0, 1.0)


def adjust_contrast_(images: Tensor, factor: Tensor) -> Tensor:
    """In-place :func:`batched_adjust_contrast`."""
    gray = batched_rgb_to_grayscale(images) if images.shape[-3] == 3 else images
    return _blend_(images, gray.mean(dim=(-3, -2, -1), keepdim=True), _per_sample(factor, images))


def adjust_saturation_(images: Tensor, factor: Tensor) -> Tensor:
    """In-place :func:`batched_adjust_saturation`."""
    if images.shape[-3] == 1:
        return images
    return _blend_(images, batched_rgb_to_grayscale(images), _per_sample(factor, images))


def adjust_hue_(images: Tensor, shift: Tensor) -> Tensor:
    """In-place :func:`batched_adjust_hue`."""
    if images.shape[-3] == 1:
        return images
    r, g, b = images.split(1, dim=-3)  # (B, 1, H, W) views
    maxc = torch.maximum(r, g)
    maxc = torch.maximum(maxc, b, out=maxc)  # V
    minc = torch.minimum(r, g)
    minc = torch.minimum(minc, b, out=minc)
    delta = maxc - minc  # V S
    # which channel is the largest (red first, then green, as torchvision), as 0/1 floats: on the CPU torch.where
    # and boolean masks cost about 10x a float op, and this is the hot loop of the whole engine
    red = torch.sub(r, maxc).sign_().add_(1.0)
    green = torch.sub(g, maxc).sign_().add_(1.0)
    green.addcmul_(green, red, value=-1.0)
    h6 = torch.sub(r, g).add_(delta, alpha=4.0)  # blue largest: 6 H = 4 + (r - g) / delta
    h6.addcmul_(green, torch.sub(b, r).add_(delta, alpha=2.0).sub_(h6))  # green largest: 2 + (b - r) / delta
    h6.addcmul_(red, torch.sub(g, b).sub_(h6))  # red largest: (g - b) / delta
    h6.div_(delta).nan_to_num_(nan=0.0)  # delta = 0: a gray pixel, any hue (torchvision: 0)
    hue6 = h6.add_(_per_sample(shift, images).mul(6.0).add_(6.0)).mul_(1.0 / 6.0).frac_().mul_(6.0)  # in [0, 6)
    for channel, centre in zip((r, g, b), (3.0, 2.0, 4.0), strict=True):
        ramp = torch.sub(hue6, centre, out=channel).abs_().sub_(1.0).clamp_(0.0, 1.0)
        if centre == 3.0:  # red: min + (max - min) clamp(|6H - 3| - 1)
            torch.addcmul(minc, delta, ramp, out=channel)
        else:  # green, blue: max - (max - min) clamp(|6H - c| - 1)
            torch.addcmul(maxc, delta, ramp, value=-1.0, out=channel)
    return images


def batched_adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    """Multiply each sample by its brightness factor (blend with black), clamped to [0, 1]."""
    return adjust_brightness_(images.clone(), factor)


def batched_adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    """Blend each sample with the mean of its grayscale image (the intensity itself for one channel)."""
    return adjust_contrast_(images.clone(), factor)


def batched_adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """Blend each sample with its grayscale image (a no-op on one channel, as in torchvision)."""
    return adjust_saturation_(images.clone(), factor)


def batched_adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate each sample's hue by ``shift`` turns (in [-0.5, 0.5]) in HSV space, as ``adjust_hue``.

    The hue is torchvision's ``_rgb_to_hsv`` (Pillow's formula); the way back is the closed form of
    ``_hsv_to_rgb``: with ``V S = max - min``, red is ``min + V S clamp(|6H - 3| - 1)``, green and blue are
    ``max - V S clamp(|6H - c| - 1)`` with c = 2, 4 (clamps to [0, 1]). No gather, no division by V, written into
    the image's own channels; equal to torchvision to about 1e-6.
    """
    return adjust_hue_(images.clone(), shift)


def batched_grayscale(images: Tensor, mask: Tensor) -> Tensor:
    """Replace the samples selected by ``mask`` (B,) with their luma, kept at the input's channel count."""
    if images.shape[-3] == 1:
        return images
    return torch.where(_per_sample(mask, images).bool(), batched_rgb_to_grayscale(images), images)


def batched_solarize(images: Tensor, threshold: float, mask: Tensor | None = None) -> Tensor:
    """Invert the pixels >= ``threshold`` of the samples selected by ``mask`` (all when None)."""
    hit = images >= threshold
    if mask is not None:
        hit &= _per_sample(mask, images).bool()
    return torch.where(hit, 1.0 - images, images)


# -------------------------------------------------------------------------------------------------------- blur


def gaussian_kernels1d(kernel_size: int, sigma: Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(B, kernel_size) normalised gaussian taps, one row per sigma, computed as torchvision computes them."""
    lim = (kernel_size - 1) / (2.0 * math.sqrt(2.0))
    x = torch.linspace(-lim, lim, steps=kernel_size, dtype=dtype, device=device)
    sigma = torch.as_tensor(sigma, dtype=dtype, device=device).reshape(-1, 1)
    return torch.softmax(x.div(sigma).pow(2).neg(), dim=-1)


def batched_gaussian_blur(images: Tensor, kernel_size: int, sigma: Tensor) -> Tensor:
    """Gaussian blur with one sigma per sample: reflect padding, then a separable depthwise convolution.

    The batch is folded into channels, ``(1, B * C, H, W)``, and convolved with ``groups=B * C`` so every sample
    gets its own kernel in one call (equal to torchvision's 2-D kernel, which is the outer product of these). On
    the CPU the padded batch is laid out channels-last first: oneDNN's depthwise convolution then vectorises over
    the B * C planes and runs about 2.5x faster than on planar NCHW.
    """
    b, c, h, w = images.shape
    taps = gaussian_kernels1d(kernel_size, sigma, images.dtype, images.device).repeat_interleave(c, dim=0)
    pad = kernel_size // 2
    x = F.pad(images.reshape(1, b * c, h, w), (pad, pad, pad, pad), mode="reflect")  # (1, B C, H + 2p, W + 2p)
    if x.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    x = F.conv2d(x, taps.view(b * c, 1, kernel_size, 1), groups=b * c)  # (1, B C, H, W + 2p)
    x = F.conv2d(x, taps.view(b * c, 1, 1, kernel_size), groups=b * c)  # (1, B C, H, W)
    return x.view(b, c, h, w)  # channels-last (1, B C, H, W) views as a strided (B, C, H, W)
