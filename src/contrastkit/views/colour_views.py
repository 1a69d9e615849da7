"""The views of the SimCLR family, shared by the recipes that differ only in their numbers."""

from __future__ import annotations

from collections.abc import Sequence

from contrastkit.views.multi_views import SMALL_INPUT_SIZE, MultiViews, colour_view, normalisation

DEFAULT_BLUR_P = 0.5  # SimCLR's and MoCo v2's blur probability above SMALL_INPUT_SIZE


class ColourViews(MultiViews):
    """``num_views`` views drawn from one distribution: random resized crop, horizontal flip, colour jitter,
    grayscale and gaussian blur (:func:`~contrastkit.views.multi_views.colour_view`). The base of
    :class:`~contrastkit.views.simclr_views.SimCLRViews` and :class:`~contrastkit.views.moco_v2_views.MoCoV2Views`,
    which give the published numbers; not a recipe by itself.

    Args:
        input_size: side of the square views in pixels.
        channels: 3 for RGB, 1 for grayscale views (saturation, hue and grayscale are then off).
        num_views: number of views.
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
        input_size: int,
        channels: int,
        *,
        num_views: int,
        crop_scale: Sequence[float],
        hflip_p: float,
        jitter: Sequence[float],
        jitter_p: float,
        grayscale_p: float,
        blur_p: float | None,
        blur_sigma: Sequence[float],
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
    ) -> None:
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        mean, std = normalisation(channels, mean, std)
        if blur_p is None:
            blur_p = 0.0 if input_size <= SMALL_INPUT_SIZE else DEFAULT_BLUR_P
        spec = colour_view(
            input_size,
            channels,
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
        super().__init__([spec] * num_views)
