"""DINO's multi-crop views (Caron et al. 2021)."""

from __future__ import annotations

from collections.abc import Sequence

from contrastkit.views.multi_views import SMALL_INPUT_SIZE, MultiViews, colour_view, normalisation
from contrastkit.views.registry import register_views

DINO_LOCAL_FRACTION = 96 / 224  # DINO's local crop side as a fraction of its global crop side


@register_views
class DINOViews(MultiViews):
    """The multi-crop augmentation of DINO: two global views, then ``num_local`` small local views.

    Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021 (arXiv 2104.14294), and
    its reference code (``DataAugmentationDINO``, ``local_crops_number=8``): every view has a horizontal flip,
    colour jitter (brightness, contrast, saturation, hue) = (0.4, 0.4, 0.2, 0.1) with probability 0.8 and
    grayscale with probability 0.2. Global views are 224-pixel crops of area 0.4-1; the first is always blurred,
    the second blurred with probability 0.1 and solarized with probability 0.2. Local views are 96-pixel crops of
    area 0.05-0.4, blurred with probability 0.5. Blur sigma is in [0.1, 2.0] pixels for every view (the code blurs
    with PIL), so all views share the global size's kernel: 10% of ``input_size`` (23 at 224). The code's crops are
    bicubic; ours are bilinear, the one interpolation both view engines share.

    The views are returned global first: ``views[:num_global]`` are global, ``views[num_global:]`` local.

    Small and grayscale images:
        Local crops keep DINO's proportion: ``local_size`` defaults to ``round(input_size * 96 / 224)`` (96 at 224,
        14 at 32, 12 at 28). With ``input_size <= 32`` (CIFAR, Fashion-MNIST) no view is blurred unless
        ``global_blur_p`` / ``local_blur_p`` are given; the solarization stays. With ``channels=1`` saturation,
        hue and ``grayscale_p`` are 0 (whatever is passed) and the default ``mean``/``std`` are (0.5,), (0.5,).

    Args:
        input_size: side of the square global views in pixels (DINO's global crop size).
        channels: 3 for RGB, 1 for grayscale views (inputs of the other kind are converted).
        local_size: side of the local views; None: ``round(input_size * 96 / 224)``.
        num_local: number of local views.
        global_scale: range of a global crop's area as a fraction of the image.
        local_scale: range of a local crop's area as a fraction of the image.
        hflip_p: probability of a horizontal flip.
        jitter: (brightness, contrast, saturation, hue) strengths of the colour jitter.
        jitter_p: probability of the colour jitter.
        grayscale_p: probability of converting to grayscale.
        global_blur_p: blur probability of (global 1, global 2); None: (1.0, 0.1), (0, 0) when ``input_size <= 32``.
        local_blur_p: blur probability of the local views; None: 0.5, or 0 when ``input_size <= 32``.
        blur_sigma: range of the blur's sigma in pixels.
        solarize_p: solarize probability of the second global view.
        mean: normalisation mean per channel; None: ImageNet's for 3 channels, (0.5,) for 1.
        std: normalisation std per channel; None: ImageNet's for 3 channels, (0.5,) for 1.

    Attributes:
        num_global: 2.
        num_local: number of local views.
    """

    num_global = 2

    def __init__(
        self,
        input_size: int = 224,
        channels: int = 3,
        *,
        local_size: int | None = None,
        num_local: int = 8,
        global_scale: tuple[float, float] = (0.4, 1.0),
        local_scale: tuple[float, float] = (0.05, 0.4),
        hflip_p: float = 0.5,
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1),
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        global_blur_p: tuple[float, float] | None = None,
        local_blur_p: float | None = None,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        solarize_p: float = 0.2,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        if num_local < 0:
            raise ValueError(f"num_local must be >= 0, got {num_local}")
        small = input_size <= SMALL_INPUT_SIZE
        mean, std = normalisation(channels, mean, std)
        if local_size is None:
            local_size = max(1, round(input_size * DINO_LOCAL_FRACTION))
        if global_blur_p is None:
            global_blur_p = (0.0, 0.0) if small else (1.0, 0.1)
        if local_blur_p is None:
            local_blur_p = 0.0 if small else 0.5
        base = colour_view(
            input_size,
            channels,
            crop_scale=global_scale,
            hflip_p=hflip_p,
            jitter=jitter,
            jitter_p=jitter_p,
            grayscale_p=grayscale_p,
            blur_p=global_blur_p[0],
            blur_sigma=blur_sigma,
            mean=mean,
            std=std,
        )
        second = base.with_changes(blur_p=global_blur_p[1], solarize_p=solarize_p)
        local = base.with_changes(
            size=local_size,
            crop_scale=tuple(local_scale),
            blur_p=local_blur_p,
            blur_kernel=min(base.blur_kernel, 2 * local_size - 1),
        )  # reflect pad < side
        self.num_local = num_local
        super().__init__([base, second] + [local] * num_local)
