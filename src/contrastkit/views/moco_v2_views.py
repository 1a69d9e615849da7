"""MoCo v2's views (Chen, Fan, Girshick and He 2020)."""

from __future__ import annotations

from collections.abc import Sequence

from contrastkit.views.colour_views import ColourViews
from contrastkit.views.registry import register_views


@register_views
class MoCoV2Views(ColourViews):
    """The augmentation of MoCo v2: ``num_views`` views (query and key) drawn from the same distribution.

    Chen, Fan, Girshick and He, "Improved Baselines with Momentum Contrastive Learning" (arXiv 2003.04297), and
    its reference code (``aug_plus``): random resized crop with area 0.2-1, colour jitter (brightness, contrast,
    saturation, hue) = (0.4, 0.4, 0.4, 0.1) with probability 0.8, grayscale with probability 0.2, gaussian blur
    with probability 0.5 and sigma in [0.1, 2.0], horizontal flip. The code blurs with PIL (no kernel size); the
    kernel here is SimCLR's 10% of the side (23 at 224), which holds over 5 sigma.

    Small and grayscale images:
        With ``input_size <= 32`` (CIFAR, Fashion-MNIST) the blur is off unless ``blur_p`` is given.
        With ``channels=1`` saturation, hue and ``grayscale_p`` are 0 (whatever is passed) and the default
        ``mean``/``std`` are (0.5,), (0.5,).

    Args:
        input_size: side of the square views in pixels.
        channels: 3 for RGB, 1 for grayscale views (inputs of the other kind are converted).
        num_views: number of views (2: query and key).
        crop_scale: range of the crop's area as a fraction of the image.
        hflip_p: probability of a horizontal flip.
        jitter: (brightness, contrast, saturation, hue) strengths of the colour jitter.
        jitter_p: probability of the colour jitter.
        grayscale_p: probability of converting to grayscale.
        blur_p: probability of the gaussian blur; None: 0.5, or 0 when ``input_size <= 32``.
        blur_sigma: range of the blur's sigma in pixels.
        mean: normalisation mean per channel; None: ImageNet's for 3 channels, (0.5,) for 1.
        std: normalisation std per channel; None: ImageNet's for 3 channels, (0.5,) for 1.
    """

    def __init__(
        self,
        input_size: int = 224,
        channels: int = 3,
        *,
        num_views: int = 2,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        hflip_p: float = 0.5,
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float | None = None,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__(
            input_size,
            channels,
            num_views=num_views,
            crop_scale=crop_scale,
            hflip_p=hflip_p,
            jitter=jitter,
            jitter_p=jitter_p,
            grayscale_p=grayscale_p,
            blur_p=blur_p,
            blur_sigma=blur_sigma,
            mean=mean,
            std=std,
        )
