"""One entry point for data: a built-in data set by name, or the user's own files by path."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

from contrastkit.data.registry import check_split, get_dataset, is_registered, list_datasets

LISTING_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")
SHARD_SUFFIX = ".tar"
_BRACE = re.compile(r"\{[^{}]*(\.\.|,)[^{}]*\}")  # a brace range or list: {000..009}, {a,b}
PATH_KINDS = (
    "a folder of images (class sub-folders optional) -> ImageFolderDataset",
    "a .csv/.tsv/.jsonl/.ndjson image-caption listing -> ImageTextDataset",
    "a .tar shard, a brace pattern such as 'shards-{000..009}.tar', or a folder of only .tar files (and .json) "
    "-> WebDatasetShards",
)


def _normalized(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _is_shard_pattern(text: str) -> bool:
    """A brace pattern or a remote URL / pipe of ``.tar`` shards (checked by WebDatasetShards, not here)."""
    remote = "://" in text or text.startswith("pipe:")
    return (bool(_BRACE.search(text)) or remote) and SHARD_SUFFIX in text


def _shard_folder(path: Path) -> list[str] | None:
    """The sorted .tar files of a folder whose visible entries are all .tar files (at least one) and JSON files
    describing them (``contrastkit prepare``'s ``prepare.json``), else None."""
    entries = [e for e in os.scandir(path) if not e.name.startswith(".") and not e.name.lower().endswith(".json")]
    if entries and all(e.is_file() and e.name.lower().endswith(SHARD_SUFFIX) for e in entries):
        return sorted(e.path for e in entries)
    return None


def _unknown(name: str) -> ValueError:
    names = list_datasets()
    close = difflib.get_close_matches(_normalized(name), names, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    kinds = "".join(f"\n  - {k}" for k in PATH_KINDS)
    return ValueError(
        f"unknown data set {name!r}: not a registered name and not an existing file or folder.{hint}\n"
        f"Registered data sets: {', '.join(names)}.\nOr a path to:{kinds}"
    )


def _from_path(
    path: Path, text: str, split: str | None, root: Any, download: bool, options: dict[str, Any], pattern: bool = False
) -> Any:
    """The data set class for an existing path, or for a shard pattern when ``pattern``."""
    if split not in (None, "train"):
        raise ValueError(
            f"split={split!r} applies to built-in data sets only; {text!r} is a path: point load_dataset at the "
            f"{split} data's own file or folder"
        )
    if download:
        raise ValueError(f"download=True applies to built-in data sets only; {text!r} is a local path")
    suffix = path.suffix.lower()
    if path.is_file() and suffix in LISTING_SUFFIXES:
        from contrastkit.data.image_text_pairs import ImageTextDataset

        return ImageTextDataset(path, **({"root": root} if root is not None else {}), **options)
    if root is not None:
        raise ValueError(f"root applies to built-in data sets and image-caption listings; {text!r} is neither")
    if pattern or (path.is_file() and suffix == SHARD_SUFFIX):
        from contrastkit.data.webdataset_shards import WebDatasetShards

        return WebDatasetShards(os.path.expanduser(text) if pattern else os.fspath(path), **options)
    if path.is_dir():
        shards = _shard_folder(path)
        if shards is not None:
            from contrastkit.data.webdataset_shards import WebDatasetShards

            return WebDatasetShards(shards, **options)
        from contrastkit.data.image_folder import ImageFolderDataset

        return ImageFolderDataset(path, **options)
    kinds = "".join(f"\n  - {k}" for k in PATH_KINDS)
    raise ValueError(f"{text!r} is a file of an unsupported kind ({suffix or 'no extension'}); accepted:{kinds}")


def load_dataset(
    name_or_path: str | os.PathLike,
    split: str | None = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
    **options: Any,
) -> Any:
    """A built-in data set by name, or a data set over the user's files by path.

    Resolution order: an exact registered name (see :func:`~contrastkit.data.registry.list_datasets`); an existing
    path (so a local folder named like a built-in must be given as ``"./digits"``); a ``.tar`` brace pattern or
    remote shard URL; a registered name written differently (``"Fashion_MNIST"`` -> ``"fashion-mnist"``).

    Paths:

    - a folder -> :class:`~contrastkit.data.image_folder.ImageFolderDataset` (``options`` e.g. ``channels``),
      unless every visible entry in it is a ``.tar`` file (JSON files aside) -> ``WebDatasetShards``;
    - a ``.csv`` / ``.tsv`` / ``.jsonl`` / ``.ndjson`` file ->
      :class:`~contrastkit.data.image_text_pairs.ImageTextDataset` (``options`` e.g. ``image_column``,
      ``caption_column``; ``root`` is where relative image paths start);
    - a ``.tar`` file or a brace pattern (``"shards-{000..009}.tar"``) ->
      :class:`~contrastkit.data.webdataset_shards.WebDatasetShards` (``options`` e.g. ``caption_key``).

    Args:
        name_or_path: a registered name or a path.
        split: the split of a built-in data set; must stay ``"train"`` (or None) for a path.
        root: data root of the built-in data sets (default ``$CONTRASTKIT_DATA`` or ``~/.cache/contrastkit``).
        download: let a built-in data set download missing files.
        **options: passed to the builder or the data set class.

    Returns:
        A map-style data set (``WebDatasetShards`` is iterable) of ``(image uint8 (C, H, W), target)`` items.

    Raises:
        ValueError: an unknown name that is not a path (the message lists the names, the accepted path kinds and
            the closest name), an unknown split (naming the valid ones), or a path of an unsupported kind.
    """
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and is_registered(text):
        return _build(text, split, root, download, options)
    path = Path(text).expanduser()
    if path.exists():
        return _from_path(path, text, split, root, download, options)
    if _is_shard_pattern(text):
        return _from_path(path, text, split, root, download, options, pattern=True)  # the class checks the files
    if isinstance(name_or_path, str) and is_registered(_normalized(text)):
        return _build(_normalized(text), split, root, download, options)
    raise _unknown(text)


def _build(name: str, split: str | None, root: Any, download: bool, options: dict[str, Any]) -> Any:
    entry = get_dataset(name)
    split = "train" if split is None else split
    if entry.splits is not None:
        check_split(name, split, entry.splits)
    return entry.builder(split=split, root=root, download=download, **options)
