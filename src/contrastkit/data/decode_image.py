"""Image bytes to a uint8 tensor, the pixels Pillow gives, fast where libjpeg-turbo can decode them directly and
at a reduced scale where the image is far larger than what it is brought to."""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}

_JPEG_MAGIC = b"\xff\xd8\xff"  # SOI and the first marker's 0xFF: what Pillow's JPEG plugin accepts too


def decode_image(data: bytes, channels: int | None = None, min_side: int | None = None) -> torch.Tensor:
    """Decode encoded image bytes into a uint8 tensor, the pixels Pillow gives.

    A plain 8-bit RGB or grayscale JPEG is decoded by libjpeg-turbo through ``torchvision.io.decode_jpeg``
    (:func:`_decode_plain_jpeg`: the same pixels as Pillow's own libjpeg-turbo, 1.5-2x as fast for a 500 x 375
    photograph, ``benchmarks/decode.py``); every other file, and any JPEG that decoder refuses, is decoded by
    Pillow, so what is decoded, and what raises and with which message, is what Pillow alone gives. One visible
    difference: libjpeg's warnings on damaged data that still decodes (``Corrupt JPEG data: 30 extraneous bytes
    before marker 0xd9``) are printed to stderr by torchvision's decoder, where Pillow keeps them silent.

    Args:
        data: the encoded file contents (JPEG, PNG, WebP, BMP, ... anything Pillow reads).
        channels: 1 or 3 to force grayscale or RGB; None keeps grayscale images at 1 channel and makes every
            other mode (RGB, RGBA, palette, CMYK, ...) RGB. 16-bit grayscale is scaled to 8 bits, not clipped.
        min_side: for images that are then brought to this side: a JPEG at least 4x larger (shorter side) is
            decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling, through Pillow's ``draft``), the
            smallest scale that keeps its shorter side at least twice ``min_side`` (:func:`reduced_scale`). A
            4000 x 3000 photograph for 256 px: decoded at 1000 x 750 in 0.4-0.75x the time (the more texture, the
            more of the time is entropy decoding, which every scale does), resized from there.

    Returns:
        uint8 tensor (C, H, W) laid out as the decoder gives it, channels innermost in memory (the strides of
        ``torchvision.io.decode_jpeg``'s output and of PyTorch's ``channels_last``): no copy into planes, which cost
        as much as a third of the decode; call ``.contiguous()`` where planes are needed.

    Raises:
        One of :data:`~contrastkit.data.skip_report.DECODE_ERRORS` when the bytes are not a decodable image.
    """
    with Image.open(io.BytesIO(data)) as image:  # reads the header only: format, mode, size, bomb check
        gray = image.mode in _GRAY_MODES
        want = channels or (1 if gray else 3)
        k = 1 if min_side is None else reduced_scale(image, min_side)
        if k > 1:  # DCT scaling by 1/k: Pillow's draft takes the largest scale that leaves at least this size
            image.draft(image.mode, (image.width // k, image.height // k))
            pixels = None
        else:
            pixels = None if want == 1 and not gray else _decode_plain_jpeg(data, image)  # RGB -> L: Pillow's luma
        if pixels is None:
            if gray and image.mode.startswith("I"):  # 16-bit PNG/TIFF: scale to 8 bits rather than clip at 255
                array = np.asarray(image).astype(np.int64)
                array = array >> 8 if image.mode.startswith("I;16") or array.max() > 255 else array
                image_8bit = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode="L")
            else:
                image_8bit = image.convert("L" if gray else "RGB")
            if want == 1 and image_8bit.mode != "L":
                image_8bit = image_8bit.convert("L")
            pixels = np.array(image_8bit, dtype=np.uint8)  # (H, W) or (H, W, 3)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]  # (H, W, 1)
    if want == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)  # (H, W, 3): grey forced to RGB
    return torch.from_numpy(pixels).permute(2, 0, 1)  # (C, H, W) view of (H, W, C)


def reduced_scale(image: Image.Image, min_side: int) -> int:
    """The ``k`` of a 1/k decode (1, 2, 4 or 8) that a JPEG opened lazily as ``image`` allows when it is brought to
    ``min_side``: the largest that keeps its shorter side at least ``2 * min_side`` (then resized by at least 2x
    more, antialiased), 1 for every other format and for CMYK JPEGs (whose colours Pillow converts)."""
    if image.format != "JPEG" or image.mode not in ("L", "RGB"):
        return 1
    short = min(image.size)
    return next((k for k in (8, 4, 2) if short // k >= 2 * min_side), 1)


def _decode_plain_jpeg(data: bytes, image: Image.Image) -> np.ndarray | None:
    """uint8 ``(H, W, C)`` of a baseline or progressive 8-bit grayscale or RGB (YCbCr) JPEG, decoded by
    ``torchvision.io.decode_jpeg``; None where Pillow must decode instead.

    ``image`` is Pillow's lazily opened view of ``data`` (header read, pixels not): its format and mode decide.
    None for anything but a JPEG of mode L or RGB (CMYK and YCCK JPEGs, MPO, every other format), and when the
    decoder raises (truncated or corrupt data, a coding this libjpeg lacks): then Pillow decodes the file, or
    raises exactly as it always has, so the fast path never decodes a file that Pillow refuses. Pillow and
    torchvision both use libjpeg-turbo with its defaults (accurate integer IDCT, fancy upsampling) and neither
    applies the EXIF orientation, so the pixels are equal (tests/data/test_skip_report.py checks real photographs
    at several qualities, subsamplings, progressive and grayscale against Pillow).
    """
    if not is_plain_jpeg(data, image):
        return None
    decode_jpeg = _jpeg_decoder()
    try:
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for TorchCodec; they still work
            warnings.simplefilter("ignore", DeprecationWarning)
            pixels = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))  # (C, H, W) view of (H, W, C)
    except RuntimeError:  # "Image is incomplete or truncated", libjpeg errors: Pillow decides and names the error
        return None
    if tuple(pixels.shape) != (len(image.mode), image.height, image.width):
        return None
    return pixels.permute(1, 2, 0).numpy()  # (H, W, C), the decoder's own memory


def is_plain_jpeg(data: bytes, image: Image.Image) -> bool:
    """Whether ``data`` (opened lazily by Pillow as ``image``: header read, pixels not) is a JPEG that
    libjpeg-turbo through ``torchvision.io.decode_jpeg`` decodes to Pillow's own pixels: mode L or RGB (not CMYK,
    YCCK, MPO), with the JPEG signature, and a torchvision that still has the decoder."""
    return (
        image.format == "JPEG"
        and image.mode in ("L", "RGB")
        and data.startswith(_JPEG_MAGIC)
        and _jpeg_decoder() is not None
    )


@functools.cache
def _jpeg_decoder() -> Callable[..., torch.Tensor] | None:
    """``torchvision.io.decode_jpeg``, imported on first use (torchvision takes a second to import), or None where
    it is gone: deprecated in torchvision 0.29 for TorchCodec, and then Pillow decodes every file."""
    try:
        from torchvision.io import decode_jpeg
    except ImportError:  # pragma: no cover - a torchvision without its image decoders
        return None
    return decode_jpeg
