"""build_transform: input kinds, channel fixing, exact normalisation, flip and solarize, seeds; ViewSpec checks."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from torchvision.transforms import v2

from contrastkit.views.sample_pipeline import RandomSolarizeFraction, build_transform
from contrastkit.views.view_spec import ViewSpec

OFF = dict(hflip_p=0.0, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0, solarize_p=0.0)  # every random step off


def plain(size: int, channels: int = 3, **changes) -> ViewSpec:
    """A deterministic view that keeps a ``size`` x ``size`` image as it is (resize and crop are no-ops)."""
    mean, std = (0.0,) * channels, (1.0,) * channels
    return ViewSpec(size=size, channels=channels, random_crop=False, mean=mean, std=std, **{**OFF, **changes})


def image_u8(c: int = 3, h: int = 40, w: int = 48, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 256, (c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def as_input(kind: str) -> object:
    x = image_u8()  # (3, H, W)
    hwc = x.permute(1, 2, 0).numpy()
    return {
        "pil_rgb": PIL.Image.fromarray(hwc),
        "pil_l": PIL.Image.fromarray(hwc[..., 0]),
        "pil_rgba": PIL.Image.fromarray(np.concatenate([hwc, hwc[..., :1]], axis=2), mode="RGBA"),
        "pil_p": PIL.Image.fromarray(hwc).convert("P"),
        "u8_rgb": x,
        "u8_gray": x[:1],
        "float_rgb": x.float() / 255,
        "float_gray": x[:1].double() / 255,
    }[kind]


@pytest.mark.parametrize(
    "kind", ["pil_rgb", "pil_l", "pil_rgba", "pil_p", "u8_rgb", "u8_gray", "float_rgb", "float_gray"]
)
@pytest.mark.parametrize("channels", [3, 1])
def test_every_input_kind_gives_a_normalised_float32_view(kind: str, channels: int) -> None:
    mean, std = (0.5,) * channels, (0.25,) * channels
    spec = ViewSpec(size=24, channels=channels, solarize_p=0.5, blur_kernel=5, mean=mean, std=std)
    out = build_transform(spec)(as_input(kind))
    assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.shape == (channels, 24, 24)
    assert out.min() >= (0 - 0.5) / 0.25 - 1e-5 and out.max() <= (1 - 0.5) / 0.25 + 1e-5


def test_deterministic_view_of_a_pil_image_is_its_pixels() -> None:
    x = image_u8()  # (3, 40, 48): resize short side 40 (no-op), centre crop 40 x 40
    out = build_transform(plain(40))(PIL.Image.fromarray(x.permute(1, 2, 0).numpy()))
    torch.testing.assert_close(out, x[:, :, 4:44].float() / 255, rtol=0, atol=1e-7)


@pytest.mark.parametrize("random_crop", [True, False])
def test_normalisation_of_a_constant_image_is_exact(random_crop: bool) -> None:
    values, mean, std = (10, 128, 250), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    spec = ViewSpec(size=16, random_crop=random_crop, mean=mean, std=std, **OFF)
    image = torch.tensor(values, dtype=torch.uint8).view(3, 1, 1).expand(3, 37, 53).contiguous()
    expected = ((torch.tensor(values) / 255 - torch.tensor(mean)) / torch.tensor(std)).view(3, 1, 1).expand(3, 16, 16)
    torch.testing.assert_close(build_transform(spec)(image), expected.float(), rtol=0, atol=1e-6)
    torch.testing.assert_close(build_transform(spec)(image.float() / 255), expected.float(), rtol=0, atol=1e-6)


def test_hflip_p_one_flips_exactly() -> None:
    x = image_u8(h=32, w=32)
    kept, flipped = build_transform(plain(32))(x), build_transform(plain(32, hflip_p=1.0))(x)
    assert not torch.equal(kept, torch.flip(kept, dims=[-1]))
    torch.testing.assert_close(flipped, torch.flip(kept, dims=[-1]), rtol=0, atol=0)


@pytest.mark.parametrize("threshold", [0.5, 0.25, 0.9])
def test_solarize_inverts_exactly_the_pixels_above_threshold_in_uint8_pil_and_float(threshold: float) -> None:
    x = torch.arange(256, dtype=torch.int64).view(1, 16, 16).expand(3, 16, 16).to(torch.uint8)  # every value
    above = x.float() / 255 >= threshold  # what the batched engine inverts, on floats in [0, 1]
    expected = torch.where(above, 255 - x, x)
    transform = build_transform(plain(16, solarize_p=1.0, solarize_threshold=threshold))
    assert 0 < above.sum() < above.numel()

    def levels(out: torch.Tensor) -> torch.Tensor:
        return (out * 255).round().to(torch.uint8)

    assert torch.equal(levels(transform(x)), expected)
    assert torch.equal(levels(transform(PIL.Image.fromarray(x.permute(1, 2, 0).numpy()))), expected)
    torch.testing.assert_close(transform(x.float() / 255), expected.float() / 255, rtol=0, atol=1e-6)


def test_solarize_threshold_is_scaled_to_the_dtype() -> None:
    solarize = RandomSolarizeFraction(0.5, p=1.0)
    assert solarize(torch.tensor([[[127, 128]]], dtype=torch.uint8)).tolist() == [[[127, 127]]]
    assert solarize(torch.tensor([[[0.49, 0.75]]])).flatten().tolist() == pytest.approx([0.49, 0.25])
    with pytest.raises(ValueError, match="threshold"):
        RandomSolarizeFraction(128)


def test_grayscale_input_is_repeated_for_rgb_views() -> None:
    out = build_transform(plain(16))(image_u8(c=1, h=16, w=16))
    assert out.shape == (3, 16, 16) and torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])


def test_rgb_input_becomes_its_rounded_luma_for_grayscale_views() -> None:
    x = image_u8(h=16, w=16)
    luma = (0.2989 * x[0].double() + 0.587 * x[1].double() + 0.114 * x[2].double()).view(1, 16, 16)
    transform = build_transform(plain(16, channels=1))
    torch.testing.assert_close(transform(x), (luma.round() / 255).float(), rtol=0, atol=1e-7)
    torch.testing.assert_close(transform(x.float() / 255), (luma / 255).float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(16, 16), (5, 16, 16)])
def test_bad_channel_counts_are_rejected(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="1 or 3 channels"):
        build_transform(plain(16))(torch.zeros(shape, dtype=torch.uint8))


def test_steps_with_probability_zero_are_left_out() -> None:
    names = [type(t).__name__ for t in build_transform(plain(16)).transforms]
    assert names == ["ToChannels", "ToImage", "Resize", "CenterCrop", "ToDtype", "Normalize", "ToPureTensor"]
    gray = build_transform(ViewSpec(size=16, channels=1, mean=(0.5,), std=(0.5,))).transforms
    jitter = next(t for t in gray if isinstance(t, v2.RandomApply)).transforms[0]
    assert isinstance(jitter, v2.ColorJitter) and jitter.saturation is None and jitter.hue is None
    assert not any(isinstance(t, v2.RandomGrayscale) for t in gray)


def test_torch_manual_seed_reproduces_the_view() -> None:
    transform, x = build_transform(ViewSpec(size=24, solarize_p=0.5, blur_kernel=5)), image_u8()
    torch.manual_seed(3)
    first = transform(x)
    torch.manual_seed(3)
    again, other = transform(x), transform(x)
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 0),
        ("channels", 2),
        ("hflip_p", 1.5),
        ("jitter_p", -0.1),
        ("blur_p", 2.0),
        ("solarize_p", 1.1),
        ("crop_scale", (0.0, 1.0)),
        ("crop_ratio", (2.0, 1.0)),
        ("resize", 0),
        ("brightness", -0.1),
        ("saturation", -1.0),
        ("hue", 0.6),
        ("blur_kernel", 4),
        ("blur_sigma", (0.0, 1.0)),
        ("solarize_threshold", 1.5),
        ("mean", (0.5,)),
        ("std", (0.2, 0.0, 0.2)),
    ],
)
def test_view_spec_errors_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"ViewSpec\.{field}\b"):
        ViewSpec(size=16, **{field: value}) if field != "size" else ViewSpec(size=value)
    with pytest.raises(ValueError, match=rf"ViewSpec\.{field}\b"):
        ViewSpec(size=16).with_changes(**{field: value})
