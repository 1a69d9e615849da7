"""CLIP's deterministic view (Radford et al. 2021)."""

from __future__ import annotations

from collections.abc import Sequence

from contrastkit.views.multi_views import MultiViews, normalisation
from contrastkit.views.registry import register_views
from contrastkit.views.view_spec import CLIP_MEAN, CLIP_STD, ViewSpec


@register_views
class CLIPViews(MultiViews):
    """CLIP's image preprocessing: one deterministic view, no random augmentation.

    Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021
    (arXiv 2103.00020), and its reference code (``clip._transform``): resize the short side to ``input_size``,
    centre-crop ``input_size`` x ``input_size``, normalise with CLIP's mean and std (the preprocessing of the
    released models; the paper's only training augmentation is a random square crop of the resized image). The
    code resizes bicubically;
    this view resizes bilinearly (with antialiasing), the one interpolation both view engines share, so pixel
    values differ slightly from the reference preprocessing.

    Small and grayscale images:
        Nothing changes with ``input_size``: there is no blur to drop. With ``channels=1`` the views are the luma
        of RGB inputs and the default ``mean``/``std`` are (0.5,), (0.5,) (CLIP's are for RGB); use
        ``channels=3`` to feed a pretrained CLIP, grayscale inputs are then repeated to 3 channels.

    Args:
        input_size: side of the square view in pixels (the short side is resized to it first).
        channels: 3 for RGB, 1 for grayscale views (inputs of the other kind are converted).
        mean: normalisation mean per channel; None: CLIP's for 3 channels, (0.5,) for 1.
        std: normalisation std per channel; None: CLIP's for 3 channels, (0.5,) for 1.
    """

    def __init__(
        self,
        input_size: int = 224,
        channels: int = 3,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        mean, std = normalisation(channels, mean, std, rgb=(CLIP_MEAN, CLIP_STD))
        spec = ViewSpec(
            size=input_size,
            channels=channels,
            random_crop=False,
            resize=input_size,
            hflip_p=0.0,
            jitter_p=0.0,
            brightness=0.0,
            contrast=0.0,
            saturation=0.0,
            hue=0.0,
            grayscale_p=0.0,
            blur_p=0.0,
            solarize_p=0.0,
            mean=mean,
            std=std,
        )
        super().__init__([spec])
