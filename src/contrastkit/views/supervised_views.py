"""The standard view of supervised ImageNet training and evaluation."""

from __future__ import annotations

from collections.abc import Sequence

from contrastkit.views.multi_views import SMALL_INPUT_SIZE, MultiViews, normalisation
from contrastkit.views.registry import register_views
from contrastkit.views.view_spec import ViewSpec

EVAL_RESIZE_RATIO = 256 / 224  # evaluation resizes the short side to 256 before a 224 centre crop


@register_views
class SupervisedViews(MultiViews):
    """The usual supervised preprocessing: one view, random for training, deterministic for evaluation.

    As in torchvision's ImageNet classification reference scripts: training takes the "Inception" random resized
    crop (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015: area 0.08-1, aspect 3/4-4/3) and a
    horizontal flip with probability 0.5, no colour jitter, grayscale or blur;
    evaluation resizes the short side to ``int(input_size * 256 / 224)`` (256 at 224) and centre-crops
    ``input_size``. Both normalise with ImageNet's mean and std.

    Small and grayscale images:
        With ``input_size <= 32`` (CIFAR, Fashion-MNIST) evaluation keeps the whole image: the short side is
        resized to ``input_size`` (a no-op for 32x32 inputs), with no 256/224 enlarge-and-crop. Training is
        unchanged (CIFAR's usual pad-and-crop is not a ViewSpec). With ``channels=1`` the default
        ``mean``/``std`` are (0.5,), (0.5,); there are no colour steps to drop.

    Args:
        input_size: side of the square view in pixels.
        channels: 3 for RGB, 1 for grayscale views (inputs of the other kind are converted).
        train: the random training view if True, else the deterministic evaluation view.
        crop_scale: range of the training crop's area as a fraction of the image.
        hflip_p: probability of a horizontal flip in training.
        mean: normalisation mean per channel; None: ImageNet's for 3 channels, (0.5,) for 1.
        std: normalisation std per channel; None: ImageNet's for 3 channels, (0.5,) for 1.
    """

    def __init__(
        self,
        input_size: int = 224,
        channels: int = 3,
        *,
        train: bool = True,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        hflip_p: float = 0.5,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        mean, std = normalisation(channels, mean, std)
        spec = ViewSpec(
            size=input_size,
            channels=channels,
            crop_scale=tuple(crop_scale),
            hflip_p=hflip_p,
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
        if not train:
            small = input_size <= SMALL_INPUT_SIZE
            resize = input_size if small else int(input_size * EVAL_RESIZE_RATIO)
            spec = spec.with_changes(random_crop=False, resize=resize, hflip_p=0.0)
        self.train = train
        super().__init__([spec])
