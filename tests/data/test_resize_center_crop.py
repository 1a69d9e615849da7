"""resize_center_crop against Pillow's own resize of the same geometry, on real photographs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_image

from contrastkit.data.resize_center_crop import resize_center_crop

PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def pillow_resize_center_crop(image: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """The reference written out: Pillow resizes the shorter side to ``size`` (rounded), then the centre crop."""
    _, h, w = image.shape
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (nh - size) // 2, (nw - size) // 2
    array = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    resized = np.asarray(pil.resize((nw, nh), PIL_FILTERS[mode]))
    resized = resized[..., None] if resized.ndim == 2 else resized
    return torch.from_numpy(resized[top : top + size, left : left + size].copy()).permute(2, 0, 1)


def photographs() -> list[torch.Tensor]:
    """scikit-learn's two photographs (427 x 640) as (3, H, W) views of (H, W, 3), a portrait crop, and grey."""
    names = ("china.jpg", "flower.jpg")
    china, flower = (torch.from_numpy(load_sample_image(n).copy()).permute(2, 0, 1) for n in names)
    grey = china.float().mean(0, keepdim=True).round().to(torch.uint8)  # (1, H, W)
    return [china, flower, flower[:, :, 100:400], grey]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [256, 224, 97, 28])
def test_within_one_grey_level_of_pillow(mode, size):
    for image in photographs():
        ours = resize_center_crop(image, size, mode)
        assert ours.shape == (image.shape[0], size, size) and ours.dtype == torch.uint8 and ours.is_contiguous()
        difference = (ours.int() - pillow_resize_center_crop(image, size, mode).int()).abs()
        assert difference.max() <= 1 and difference.float().mean() < 0.02


def test_the_layout_in_memory_does_not_change_the_pixels():
    for image in photographs():
        planes = image.contiguous()  # (C, H, W) planes, against the (H, W, C) memory a decoder gives
        assert image.stride()[0] == 1 or image.shape[0] == 1
        assert torch.equal(resize_center_crop(image, 224), resize_center_crop(planes, 224))


def test_an_image_already_square_at_the_size_is_returned_as_is():
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    assert resize_center_crop(image, 64) is image


def test_a_float_image_is_interpolated_in_float_and_rounded():
    image = photographs()[0]
    as_float = resize_center_crop(image.float(), 224)  # the path a CUDA tensor takes
    assert as_float.dtype == torch.uint8
    assert (as_float.int() - pillow_resize_center_crop(image, 224, "bilinear").int()).abs().max() <= 1
