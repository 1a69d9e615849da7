"""SimCLR's views (Chen et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence

from contrastkit.views.colour_views import ColourViews
from contrastkit.views.registry import register_views


@register_views
class SimCLRViews(ColourViews):
    """The augmentation of SimCLR: ``num_views`` views drawn from the same distribution.

    Chen, Kornblith, Norouzi and Hinton, "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020 (arXiv 2002.05709), appendix A: random resized crop (area 0.08-1, aspect 3/4-4/3) with a horizontal
    flip; colour jitter of strength s, (brightness, contrast, saturation, hue) = (0.8s, 0.8s, 0.8s, 0.2s) with
    probability 0.8; grayscale with probability 0.2; gaussian blur with probability 0.5, sigma in [0.1, 2.0] and a
    kernel of 10% of the image side (23 at 224, see :func:`blur_kernel_size`). The paper's CIFAR-10 runs use
    s = 0.5 and no blur.

    Small and grayscale images:
        With ``input_size <= 32`` (CIFAR, Fashion-MNIST) the blur is off unless ``blur_p`` is given, as in SimCLR's
        CIFAR-10 setting; ``jitter_strength`` is left to the caller (pass 0.5 for the paper's CIFAR-10 setting).
        With ``channels=1`` saturation, hue and ``grayscale_p`` are 0 (whatever is passed) and the default
        ``mean``/``std`` are (0.5,), (0.5,).

    Args:
        input_size: side of the square views in pixels.
        channels: 3 for RGB, 1 for grayscale views (inputs of the other kind are converted).
        num_views: number of views (2 in the paper).
        crop_scale: range of the crop's area as a fraction of the image.
        hflip_p: probability of a horizontal flip.
        jitter_strength: the colour distortion strength s.
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
        crop_scale: tuple[float, float] = (0.08, 1.0),
        hflip_p: float = 0.5,
        jitter_strength: float = 1.0,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float | None = None,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        s = jitter_strength
        super().__init__(
            input_size,
            channels,
            num_views=num_views,
            crop_scale=crop_scale,
            hflip_p=hflip_p,
            jitter=(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s),
            jitter_p=jitter_p,
            grayscale_p=grayscale_p,
            blur_p=blur_p,
            blur_sigma=blur_sigma,
            mean=mean,
            std=std,
        )
