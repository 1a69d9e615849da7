"""An uploaded query image decoded safely: its size read from the header and refused above a pixel cap before any
pixel is decoded, large JPEGs decoded at a reduced scale, and every decoding failure a one-line refusal."""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import torch

from contrastkit.index.request_error import RequestError

MAX_PIXELS = 40_000_000  # 40 megapixels: a 7,300 x 5,500 photo; decoded as RGB it takes 120 MB
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # what the page's image/* picker sends; no EPS / PDF


def read_query_image(data: bytes, channels: int, input_size: int, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """The uploaded bytes as a uint8 ``(C, H, W)`` image with ``channels`` channels (1 or 3), as
    :func:`~contrastkit.data.decode_image.decode_image` gives it to ``contrastkit search``.

    Pillow opens images lazily: the header gives the size, and an image of more than ``max_pixels`` pixels is refused
    with 413 before its pixels are decoded (a 20,000 x 20,000 PNG of 99 KB would take 1.2 GB). A JPEG is decoded at
    the smallest scale (1/2, 1/4, 1/8, by its DCT) that keeps both sides >= ``2 * input_size``: the encoder sees the
    image resized to ``input_size`` anyway, so a 6,000 x 4,000 photo costs a 750 x 500 decode. Anything Pillow cannot
    read (a non-image, a truncated file, a format outside ``FORMATS``) is refused with 400.

    Raises:
        RequestError: 413 for too many pixels, 400 for an unreadable upload.
    """
    from PIL import Image

    from contrastkit.data.decode_image import decode_image

    if not data:
        raise RequestError(400, "the uploaded image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the cap below decides
            picture = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as e:  # more than twice Pillow's own limit: refused by size
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
        raise RequestError(413, f"the image has {size}; at most {max_pixels:,}") from None
    except Exception as e:  # (any failure to read an upload's header is the upload's)
        raise RequestError(400, f"the upload is not a readable image ({type(e).__name__})") from None
    with picture:
        width, height = picture.size
        if width * height > max_pixels:
            raise RequestError(
                413, f"the image is {width} x {height} = {width * height:,} pixels; at most {max_pixels:,}"
            )
        try:
            if picture.format == "JPEG":
                picture.draft(picture.mode, (2 * input_size, 2 * input_size))  # DCT scaling, at most 1/8
                picture.load()
                return _as_tensor(picture, channels)
            return decode_image(data, channels)  # (C, H, W)
        except Exception as e:  # (a corrupt body, a bomb inside a chunk: the upload's fault)
            raise RequestError(400, f"the upload is not a readable image ({type(e).__name__})") from None


def _as_tensor(picture, channels: int) -> torch.Tensor:
    """A decoded 8-bit Pillow image (L, RGB, CMYK, ...) as a uint8 ``(channels, H, W)`` tensor."""
    pixels = np.array(picture.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)  # (H, W) or (H, W, 3)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]  # (H, W, 1)
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()  # (C, H, W)
