"""BYOL's two asymmetric views (Grill et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence

from contrastkit.views.multi_views import SMALL_INPUT_SIZE, MultiViews, colour_view, normalisation
from contrastkit.views.registry import register_views


@register_views
class BYOLViews(MultiViews):
    """The augmentation of BYOL: two views that differ in their blur and solarize probabilities.

    Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning", NeurIPS 2020
    (arXiv 2006.07733), table 6: random resized crop (area 0.08-1, aspect 3/4-4/3) and horizontal flip with
    probability 0.5 for both views; colour jitter (brightness, contrast, saturation, hue) = (0.4, 0.4, 0.2, 0.1)
    with probability 0.8; grayscale with probability 0.2; gaussian blur (23x23 kernel at 224, sigma in
    [0.1, 2.0]) with probability 1.0 for the first view and 0.1 for the second; solarization with probability
    0.0 for the first view and 0.2 for the second.

    Small and grayscale images:
        With ``input_size <= 32`` (CIFAR, Fashion-MNIST) both views are unblurred unless ``blur_p`` is given;
        the solarization stays. The kernel is 10% of the side (:func:`blur_kernel_size`), which is 23 at 224.
        With ``channels=1`` saturation, hue and ``grayscale_p`` are 0 (whatever is passed) and the default
        ``mean``/``std`` are (0.5,), (0.5,).

    Args:
        input_size: side of the square views in pixels.
        channels: 3 for RGB, 1 for grayscale views (inputs of the other kind are converted).
        crop_scale: range of the crop's area as a fraction of the image.
        hflip_p: probability of a horizontal flip.
        jitter: (brightness, contrast, saturation, hue) strengths of the colour jitter.
        jitter_p: probability of the colour jitter.
        grayscale_p: probability of converting to grayscale.
        blur_p: blur probability of (view 1, view 2); None: (1.0, 0.1), or (0, 0) when ``input_size <= 32``.
        blur_sigma: range of the blur's sigma in pixels.
        solarize_p: solarize probability of (view 1, view 2).
        mean: normalisation mean per channel; None: ImageNet's for 3 channels, (0.5,) for 1.
        std: normalisation std per channel; None: ImageNet's for 3 channels, (0.5,) for 1.
    """

    def __init__(
        self,
        input_size: int = 224,
        channels: int = 3,
        *,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        hflip_p: float = 0.5,
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1),
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: tuple[float, float] | None = None,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        solarize_p: tuple[float, float] = (0.0, 0.2),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        mean, std = normalisation(channels, mean, std)
        if blur_p is None:
            blur_p = (0.0, 0.0) if input_size <= SMALL_INPUT_SIZE else (1.0, 0.1)
        spec = colour_view(
            input_size,
            channels,
            crop_scale=crop_scale,
            hflip_p=hflip_p,
            jitter=jitter,
            jitter_p=jitter_p,
            grayscale_p=grayscale_p,
            blur_p=0.5,
            blur_sigma=blur_sigma,
            mean=mean,
            std=std,
        )
        first, second = (spec.with_changes(blur_p=b, solarize_p=s) for b, s in zip(blur_p, solarize_p, strict=True))
        super().__init__([first, second])
