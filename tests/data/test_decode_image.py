"""decode_image's reduced-scale decode of large JPEGs (libjpeg's DCT scaling through Pillow's draft)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_image

from contrastkit.data.decode_image import decode_image, reduced_scale
from contrastkit.data.resize_center_crop import resize_center_crop
from contrastkit.data.skip_report import load_image_or_skip


def jpeg(size: tuple[int, int], mode: str = "RGB", fmt: str = "JPEG") -> bytes:
    """scikit-learn's china.jpg brought to ``size`` (width, height), with a fine texture so detail is lost when
    scaling is done badly, encoded as ``fmt``."""
    photo = Image.fromarray(load_sample_image("china.jpg")).resize(size, Image.BICUBIC)
    noise = np.random.default_rng(0).integers(-10, 11, (size[1], size[0], 1))
    pixels = np.clip(np.asarray(photo).astype(np.int16) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def scale_of(data: bytes, min_side: int) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return reduced_scale(image, min_side)


@pytest.mark.parametrize(
    ("size", "min_side", "k"),
    [((4000, 3000), 256, 4), ((2560, 1707), 256, 2), ((1023, 767), 256, 1), ((2048, 1024), 256, 2),
     ((2048, 1024), 64, 8), ((500, 375), 32, 4), ((500, 375), 256, 1)],
)  # fmt: skip
def test_the_scale_keeps_the_shorter_side_at_least_twice_the_target(size, min_side, k):
    data = jpeg(size)
    assert scale_of(data, min_side) == k
    short = min(size)
    assert k == 1 or short // k >= 2 * min_side  # reduced: still at least twice the target
    assert k == 8 or short // (2 * k) < 2 * min_side  # and no further reduction would be


def test_other_formats_and_cmyk_jpegs_are_decoded_whole():
    assert scale_of(jpeg((1600, 1200), fmt="PNG"), 64) == 1
    assert scale_of(jpeg((1600, 1200), mode="CMYK"), 64) == 1
    png = jpeg((1600, 1200), fmt="PNG")
    assert decode_image(png, 3, min_side=64).shape == (3, 1200, 1600)


def test_a_large_jpeg_decodes_as_pillows_draft_and_sizes_like_the_whole_image():
    data = jpeg((2200, 1467))
    reduced = decode_image(data, 3, min_side=256)  # 1/2: 1100 x 734, shorter side >= 512
    with Image.open(io.BytesIO(data)) as image:  # the reference: Pillow's own DCT-scaled decode
        image.draft("RGB", (1000, 700))  # Pillow picks the scale: the largest of 1/2, 1/4, 1/8 at least this
        expected = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
    assert reduced.shape == (3, 734, 1100) and torch.equal(reduced, expected)
    whole = decode_image(data, 3)
    assert whole.shape == (3, 1467, 2200)
    difference = (resize_center_crop(reduced, 256).int() - resize_center_crop(whole, 256).int()).abs()
    assert difference.float().mean() < 1.5  # what training sees: nearly the same 256-px image
    grey = decode_image(data, 1, min_side=256)
    assert grey.shape == (1, 734, 1100)


def test_an_image_too_small_to_reduce_is_decoded_exactly_as_without():
    data = jpeg((700, 500))
    assert torch.equal(decode_image(data, 3, min_side=200), decode_image(data, 3))
    assert decode_image(data, 3, min_side=100).shape == (3, 250, 350)  # 1/2: 250 >= 200


def test_load_image_or_skip_passes_the_side_on(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg((1600, 1200)))
    assert load_image_or_skip(str(path), 3, min_side=100).shape == (3, 300, 400)  # 1/4
    assert load_image_or_skip(str(path), 3).shape == (3, 1200, 1600)
