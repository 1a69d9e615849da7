"""Data sets: built-ins (digits, fashion-mnist, cifar10, stl10), image folders, image-text listings, tar shards.

Bad data loses nothing and stops nothing: an unreadable image becomes a ``Skipped`` record that the collate
function drops and a ``SkipReport`` counts and lists (path and reason) at the end of the epoch.
"""

from contrastkit.data import (  # noqa: F401  (import registers the built-in data sets)
    cifar,
    digits,
    fashion_mnist,
    sequence_dataset,
    stl10,
)
from contrastkit.data.array_dataset import ArrayImageDataset
from contrastkit.data.decode_image import decode_image
from contrastkit.data.download import DownloadError, resolve_archive
from contrastkit.data.fashion_mnist import read_idx
from contrastkit.data.image_folder import IMAGE_EXTENSIONS, ImageFolderDataset
from contrastkit.data.image_text_pairs import ImageTextDataset
from contrastkit.data.load_dataset import load_dataset
from contrastkit.data.multi_view_dataset import (
    MultiViewDataset,
    collate_views,
    reproducible_loader_kwargs,
    seed_worker,
)
from contrastkit.data.registry import list_datasets, register_dataset
from contrastkit.data.skip_report import (
    Skipped,
    SkipReport,
    check_not_empty,
    load_image_or_skip,
    split_skipped,
)
from contrastkit.data.webdataset_shards import WebDatasetShards, expand_shards

__all__ = [
    "IMAGE_EXTENSIONS",
    "ArrayImageDataset",
    "DownloadError",
    "ImageFolderDataset",
    "ImageTextDataset",
    "MultiViewDataset",
    "SkipReport",
    "Skipped",
    "WebDatasetShards",
    "check_not_empty",
    "collate_views",
    "decode_image",
    "expand_shards",
    "list_datasets",
    "load_dataset",
    "load_image_or_skip",
    "read_idx",
    "register_dataset",
    "reproducible_loader_kwargs",
    "resolve_archive",
    "seed_worker",
    "split_skipped",
]
