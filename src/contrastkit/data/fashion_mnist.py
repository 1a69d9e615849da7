"""Fashion-MNIST: 70,000 grayscale 28×28 images of clothing in 10 classes, read from IDX files.

Files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
``t10k-labels-idx1-ubyte.gz``, gzipped or not) are looked for in order:

1. ``/usr/share/datasets/fashion-mnist/`` — the Debian package ``dataset-fashion-mnist``
   (``sudo apt-get install dataset-fashion-mnist``) installs the four ``.gz`` files there, flat;
2. the cache folder ``<root or $CONTRASTKIT_DATA or ~/.cache/contrastkit>/fashion-mnist`` (and ``root`` itself);
3. with ``download=True``, downloaded into the cache from Zalando's GitHub repository or the S3 mirror that
   torchvision uses, and checked against torchvision's MD5s.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from contrastkit.data.array_dataset import ArrayImageDataset
from contrastkit.data.download import Opener, resolve_archive
from contrastkit.data.registry import check_split, register_dataset

NAME = "fashion-mnist"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
APT_HINT = "Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist"
MIRRORS = [
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]
MD5 = {  # of the upstream .gz files (torchvision.datasets.FashionMNIST.resources)
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# each class in words that place it among its kind, for captions and zero-shot prompts: bare, a locked text encoder
# knows the names but not their kinship (all-MiniLM-L6-v2 puts "ankle boot" as near "trouser" as "sneaker", far from
# "sandal"); worded, the three shoes and the four tops each sit together (benchmarks/RESULTS.md, clip-fashion-mnist)
CLASS_WORDING = {
    "T-shirt/top": "t-shirt, a short-sleeved top",
    "Trouser": "pair of trousers, clothing for the legs",
    "Pullover": "pullover, a knitted top with long sleeves",
    "Dress": "dress, a one-piece garment",
    "Coat": "coat, a long-sleeved top worn outdoors",
    "Sandal": "sandal, an open shoe",
    "Shirt": "shirt, a top with a collar and buttons",
    "Sneaker": "sneaker, a sports shoe",
    "Bag": "bag, a handbag",
    "Ankle boot": "ankle boot, a shoe that covers the ankle",
}
SPLITS = ("train", "test")
_PREFIX = {"train": "train", "test": "t10k"}

# IDX type codes (third byte of the magic number) -> big-endian numpy dtypes
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_maybe_gzip(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (detected by content: an IDX file starts with a zero byte)."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(f"{path.name}: corrupt or truncated gzip data ({error}) in {path}") from error


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Parse an IDX file (gzipped or not) into an array of its native-endian dtype.

    Format: two zero bytes, a type code, the number of dimensions d, d big-endian uint32 sizes, then the data.

    Args:
        path: the file.
        ndim: the number of dimensions expected (3 for images, 1 for labels), or None for any.

    Returns:
        The array, shaped as the header says.

    Raises:
        ValueError: naming the file and the problem: bad magic number, unknown type code, wrong number of
            dimensions, truncated data or trailing bytes, or corrupt gzip data.
    """
    path = Path(path)
    raw = _read_maybe_gzip(path)
    name = path.name
    if len(raw) < 4:
        raise ValueError(f"{name}: truncated: {len(raw)} bytes, shorter than the 4-byte IDX magic number ({path})")
    if raw[0] != 0 or raw[1] != 0:
        magic = int.from_bytes(raw[:4], "big")
        raise ValueError(
            f"{name}: bad magic number 0x{magic:08x}: not an IDX file (expected 0x0000TTDD: two zero bytes, a type "
            f"code, the number of dimensions) ({path})"
        )
    code, dims_n = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise ValueError(f"{name}: unknown IDX data type code 0x{code:02x} (known: {known}) ({path})")
    if ndim is not None and dims_n != ndim:
        raise ValueError(f"{name}: expected {ndim} dimension(s), the header says {dims_n} ({path})")
    header = 4 + 4 * dims_n
    if len(raw) < header:
        raise ValueError(f"{name}: truncated: {len(raw)} bytes, shorter than its {header}-byte header ({path})")
    shape = struct.unpack(f">{dims_n}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    expected = header + math.prod(shape) * dtype.itemsize
    what = f"header: {' x '.join(map(str, shape))} of {dtype.name}"
    if len(raw) < expected:
        raise ValueError(f"{name}: truncated: expected {expected} bytes of data, got {len(raw)} ({what}) ({path})")
    if len(raw) > expected:
        raise ValueError(
            f"{name}: {len(raw) - expected} unexpected bytes after the data: expected {expected} bytes, got "
            f"{len(raw)} ({what}) ({path})"
        )
    data = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)  # writable, native byte order


def _resolve(filename: str, root, download: bool, opener: Opener | None) -> Path:
    return resolve_archive(
        NAME,
        filename,
        MD5[filename],
        [m + filename for m in MIRRORS],
        root,
        download,
        opener,
        system_dirs=[SYSTEM_DIR],
        also=[filename.removesuffix(".gz")],
        hint=APT_HINT,
    )


@register_dataset(splits=SPLITS)
def fashion_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
    opener: Opener | None = None,
) -> ArrayImageDataset:
    """Fashion-MNIST as uint8 (1, 28, 28) images with labels 0..9 (see the module doc for where files are found).

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: the data root (cache folder ``<root>/fashion-mnist``; files directly in ``root`` are found too).
        download: download missing files into the cache.
        opener: ``opener(url) -> binary file object`` used for downloads (default ``urllib.request.urlopen``).

    Raises:
        FileNotFoundError: a file is not found anywhere; the message names the three places and the apt command.
        ValueError: an unknown split, or a corrupt file (the message names it and what is wrong).
    """
    check_split(NAME, split, SPLITS)
    prefix = _PREFIX[split]
    images_path = _resolve(f"{prefix}-images-idx3-ubyte.gz", root, download, opener)
    labels_path = _resolve(f"{prefix}-labels-idx1-ubyte.gz", root, download, opener)
    images = read_idx(images_path, ndim=3)  # (N, 28, 28)
    labels = read_idx(labels_path, ndim=1)  # (N,)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise ValueError(f"{images_path.name}, {labels_path.name}: expected unsigned-byte IDX files")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path.name} has {len(images)} images but {labels_path.name} has {len(labels)} labels "
            f"({images_path.parent})"
        )
    if len(labels) and int(labels.max()) >= len(CLASSES):
        raise ValueError(f"{labels_path.name}: label {int(labels.max())} is not a class index 0..{len(CLASSES) - 1}")
    return ArrayImageDataset(
        images[:, None], labels, CLASSES, name=f"{NAME} ({split})", class_wording=CLASS_WORDING
    )  # (N, 1, 28, 28)
