"""One augmented view, described as data: the single source both the per-sample and the batched pipelines read."""

from __future__ import annotations

from dataclasses import dataclass, replace

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
GRAYSCALE_MEAN = (0.5,)  # single-channel default: maps [0, 1] to [-1, 1], whatever the data set
GRAYSCALE_STD = (0.5,)


def blur_kernel_size(size: int) -> int:
    """SimCLR's gaussian blur kernel for a ``size``-pixel view: 10% of the side, made odd (224 -> 23, 96 -> 9)."""
    return size // 10 // 2 * 2 + 1


@dataclass(frozen=True)
class ViewSpec:
    """The random transformations that make one view, in the order they are applied.

    crop -> horizontal flip -> colour jitter -> grayscale -> gaussian blur -> solarize -> float in [0, 1] ->
    normalise. A probability of 0 switches a step off. ``random_crop=False`` makes a deterministic view (resize
    the short side to ``resize`` then centre-crop ``size``), as CLIP and evaluation use.
    """

    size: int  # output height and width in pixels
    channels: int = 3  # 3 for RGB, 1 for grayscale images (colour steps then act on intensity only)
    random_crop: bool = True  # RandomResizedCrop; False: resize + centre crop
    crop_scale: tuple[float, float] = (0.08, 1.0)  # range of the crop's area as a fraction of the image
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # range of the crop's aspect ratio (width / height)
    resize: int | None = None  # short side before the centre crop when random_crop=False (None: size)
    hflip_p: float = 0.5  # probability of a horizontal flip
    jitter_p: float = 0.8  # probability of applying colour jitter
    brightness: float = 0.4  # brightness factor drawn from [1 - b, 1 + b]
    contrast: float = 0.4  # contrast factor drawn from [1 - c, 1 + c]
    saturation: float = 0.2  # saturation factor drawn from [1 - s, 1 + s] (ignored for 1 channel)
    hue: float = 0.1  # hue shift drawn from [-h, h], in turns (ignored for 1 channel)
    grayscale_p: float = 0.2  # probability of converting to grayscale (kept at `channels` channels)
    blur_p: float = 0.5  # probability of a gaussian blur
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # blur sigma range, in pixels of the output view
    blur_kernel: int = 23  # odd blur kernel size in pixels (SimCLR: about 10% of the view size)
    solarize_p: float = 0.0  # probability of solarizing (BYOL's second view: 0.2)
    solarize_threshold: float = 0.5  # pixels >= threshold (in [0, 1]) are inverted
    mean: tuple[float, ...] = IMAGENET_MEAN  # per-channel normalisation mean (length `channels`)
    std: tuple[float, ...] = IMAGENET_STD  # per-channel normalisation std (length `channels`)

    def __post_init__(self) -> None:
        def prob(name: str) -> None:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"ViewSpec.{name} must be a probability in [0, 1], got {value}")

        if self.size < 1:
            raise ValueError(f"ViewSpec.size must be >= 1, got {self.size}")
        if self.channels not in (1, 3):
            raise ValueError(f"ViewSpec.channels must be 1 or 3, got {self.channels}")
        for name in ("hflip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p"):
            prob(name)
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"ViewSpec.crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        if not 0.0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"ViewSpec.crop_ratio must satisfy 0 < low <= high, got {self.crop_ratio}")
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise ValueError(f"ViewSpec.blur_kernel must be a positive odd number, got {self.blur_kernel}")
        if self.resize is not None and self.resize < 1:
            raise ValueError(f"ViewSpec.resize must be None or >= 1, got {self.resize}")
        for name in ("brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ValueError(f"ViewSpec.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"ViewSpec.hue must be in [0, 0.5], got {self.hue}")
        if not 0.0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"ViewSpec.blur_sigma must satisfy 0 < low <= high, got {self.blur_sigma}")
        if not 0.0 <= self.solarize_threshold <= 1.0:
            raise ValueError(f"ViewSpec.solarize_threshold must be in [0, 1], got {self.solarize_threshold}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(
                f"ViewSpec.mean and .std need {self.channels} values, got {len(self.mean)} and {len(self.std)}"
            )
        if min(self.std) <= 0:
            raise ValueError(f"ViewSpec.std must be > 0, got {self.std}")

    def with_changes(self, **changes) -> ViewSpec:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)
