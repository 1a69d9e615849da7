"""CIFAR-10: 60,000 colour 32×32 images in 10 classes, read from the python-pickle archive without unpickling code.

The archive ``cifar-10-python.tar.gz`` is found in (or, with ``download=True``, downloaded into) the cache folder
``<root or $CONTRASTKIT_DATA or ~/.cache/contrastkit>/cifar10`` and read in place (nothing is extracted).
Its members ``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch`` and ``batches.meta`` are Python 2 pickles
(protocol 2) of plain dicts: ``data`` a numpy uint8 (10000, 3072) array (rows: 1024 red, 1024 green, 1024 blue
values, each a row-major 32×32 plane), ``labels`` a list of ints, ``batch_label`` and ``filenames`` strings;
``batches.meta`` holds ``label_names``.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from contrastkit.data.array_dataset import ArrayImageDataset
from contrastkit.data.download import Opener, resolve_archive
from contrastkit.data.registry import check_split, register_dataset

NAME = "cifar10"
FILENAME = "cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"  # torchvision.datasets.CIFAR10.tgz_md5
URLS = ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
FOLDER = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
SPLITS = ("train", "test")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The only globals a CIFAR batch may name: what numpy needs to rebuild the ``data`` array.

    The original files (numpy 1.x, Python 2) name ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and
    ``numpy.dtype``; numpy 2 moved ``numpy.core`` to ``numpy._core``, so both module names map to the same function
    (resolved here without importing the deprecated ``numpy.core`` alias). None of them runs arbitrary code:
    ``_reconstruct`` makes an empty array of a given class (only ``numpy.ndarray`` is allowed) and ``dtype`` parses
    a type description.
    """
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 / numpy 1
    reconstruct = core.multiarray._reconstruct
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that resolves no global except the numpy array constructors in :func:`_numpy_globals`.

    Any other global (a class, a function such as ``os.system``) raises ``pickle.UnpicklingError``, so a tampered
    archive cannot run code; everything else in a batch is plain pickle data (dicts, lists, ints, strings).
    Persistent ids are refused by ``pickle.Unpickler`` itself when ``persistent_load`` is not defined.
    """

    _allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed numpy global; refuse everything else."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: a CIFAR batch may only contain numpy arrays and plain data"
            ) from None


def safe_load(data: bytes, source: str) -> Any:
    """Unpickle a CIFAR batch with :class:`SafeUnpickler` (Python 2 strings decoded as latin-1, as torchvision does).

    Raises:
        ValueError: naming ``source`` when the pickle is invalid or names a refused global.
    """
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"{source}: not a valid CIFAR-10 batch: {error}") from error


def _member(archive: tarfile.TarFile, path: Path, name: str) -> bytes:
    try:
        member = archive.getmember(f"{FOLDER}/{name}")
    except KeyError:
        raise ValueError(f"{path.name}: member {FOLDER}/{name} is missing ({path})") from None
    f = archive.extractfile(member)
    if f is None:
        raise ValueError(f"{path.name}: member {FOLDER}/{name} is not a regular file ({path})")
    return f.read()


def _batch(entry: Any, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The (N, 3, 32, 32) images and (N,) labels of one unpickled batch, checked."""
    if not isinstance(entry, dict) or "data" not in entry or "labels" not in entry:
        raise ValueError(f"{source}: expected a dict with 'data' and 'labels'")
    data, labels = entry["data"], np.asarray(entry["labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{source}: 'data' must be a uint8 (N, 3072) array, got {type(data).__name__} {shape}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{source}: expected {len(data)} integer labels, got {labels.dtype} {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)  # (N, 3, 32, 32): planes are R, G, B


def read_cifar10(path: str | os.PathLike, split: str) -> ArrayImageDataset:
    """Read one split of a ``cifar-10-python.tar.gz`` archive (see the module doc for its format)."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:gz") as archive:
            meta = safe_load(_member(archive, path, "batches.meta"), f"{path.name}:{FOLDER}/batches.meta")
            parts = []
            for batch in BATCHES[split]:
                source = f"{path.name}:{FOLDER}/{batch}"  # for messages
                parts.append(_batch(safe_load(_member(archive, path, batch), source), source))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ValueError(f"{path.name}: corrupt or truncated archive ({error}) ({path})") from error
    classes = meta.get("label_names") if isinstance(meta, dict) else None
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"{path.name}: {FOLDER}/batches.meta has no list of 'label_names'")
    images = np.concatenate([p[0] for p in parts])  # (N, 3, 32, 32)
    targets = np.concatenate([p[1] for p in parts])  # (N,)
    return ArrayImageDataset(images, targets, classes, name=f"{NAME} ({split})")


@register_dataset(splits=SPLITS)
def cifar10(
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
    opener: Opener | None = None,
) -> ArrayImageDataset:
    """CIFAR-10 as uint8 (3, 32, 32) images with labels 0..9, classes from ``batches.meta``.

    Args:
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
        root: the data root (archive in ``<root>/cifar10/`` or directly in ``root``).
        download: download the archive (163 MB, MD5-checked) when it is not found.
        opener: ``opener(url) -> binary file object`` used for the download (default ``urllib.request.urlopen``).

    Raises:
        FileNotFoundError: the archive is not found and ``download=False`` (the message says where it looked).
        ValueError: an unknown split, or a corrupt archive (the message names the member and the problem).
    """
    check_split(NAME, split, SPLITS)
    return read_cifar10(resolve_archive(NAME, FILENAME, MD5, URLS, root, download, opener), split)
