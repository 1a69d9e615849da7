"""Image-caption pairs listed in a CSV / TSV (with a header) or a JSON-lines file."""

from __future__ import annotations

import csv
import io
import json
import os

import torch
from torch.utils.data import Dataset

from contrastkit.data.skip_report import Skipped, check_channels, load_image_or_skip

MAX_LISTED = 10  # missing image files listed in one error message


def _read_text(path: str) -> str:
    """The file as text (UTF-8, optional BOM); a decoding error names the line."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}, line {line}: not valid UTF-8 text ({error.reason})") from None


def _csv_rows(path: str, text: str, delimiter: str, image_column: str, caption_column: str):
    """Yield (line number, image, caption) from a CSV whose first line is the header."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise ValueError(
            f"{path} is empty: expected a header line naming the columns {image_column!r}, {caption_column!r}"
        )
    header = [h.strip() for h in header]
    for column in (image_column, caption_column):
        if column not in header:
            raise ValueError(f"{path}: missing column {column!r} in the header (line 1); columns found: {header}")
    i_image, i_caption = header.index(image_column), header.index(caption_column)
    next_line = reader.line_num + 1
    for row in reader:
        line, next_line = next_line, reader.line_num + 1  # a quoted field may span lines: report the first
        if not row or all(not field.strip() for field in row):
            continue
        if len(row) != len(header):
            raise ValueError(
                f"{path}, line {line}: {len(row)} fields where the header has {len(header)} "
                f"(quote fields that contain the delimiter {delimiter!r})"
            )
        yield line, row[i_image], row[i_caption]


def jsonl_records(path: str, text: str):
    """Yield (line number, object) from a JSON-lines file; a malformed line or a non-object names the line."""
    for line, raw in enumerate(text.split("\n"), start=1):  # not splitlines(): JSON strings may hold U+2028
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {line}: malformed JSON ({error.msg}, column {error.colno})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}, line {line}: expected a JSON object, got {type(record).__name__}")
        yield line, record


def _jsonl_rows(path: str, text: str, image_column: str, caption_column: str):
    """Yield (line number, image, caption) from a JSON-lines file of objects."""
    for line, record in jsonl_records(path, text):
        for column in (image_column, caption_column):
            if column not in record:
                raise ValueError(f"{path}, line {line}: missing column {column!r}; keys found: {sorted(record)}")
        image, caption = record[image_column], record[caption_column]
        for column, value in ((image_column, image), (caption_column, caption)):
            if not isinstance(value, str):
                raise ValueError(
                    f"{path}, line {line}, column {column!r}: expected a string, got {type(value).__name__}"
                )
        yield line, image, caption


class ImageTextDataset(Dataset):
    """Image-caption pairs from a ``.csv`` / ``.tsv`` (header line required) or ``.jsonl`` / ``.ndjson`` file.

    Each item is ``(image uint8 (C, H, W), caption: str)``. Relative image paths are resolved against ``root``, or
    the listing file's folder when ``root`` is None.

    The listing is validated at construction (the images themselves are not read): a missing column, an empty
    caption or image path, a malformed JSON line or a CSV row with the wrong number of fields raise a ValueError
    naming the file and the 1-based line (the CSV header is line 1). Missing image files are all collected first
    and reported in one ValueError: the total and up to 10 of them with their line and column, so a user fixes
    them in one pass. An image that exists but cannot be decoded gives a
    :class:`~contrastkit.data.skip_report.Skipped` when loaded.

    Args:
        path: the listing file.
        image_column: the column (JSON key) with the image path.
        caption_column: the column (JSON key) with the caption.
        root: folder that relative image paths are relative to (default: the listing file's folder).
        channels: None (grayscale 1 channel, others 3), or 1 / 3 to force.
        check_files: check at construction that every image file exists (one ``stat`` per row; turn off for
            very large listings on slow file systems: a missing file then becomes a Skipped when loaded).
    """

    classes = None

    def __init__(
        self,
        path: str | os.PathLike,
        image_column: str = "image",
        caption_column: str = "caption",
        root: str | os.PathLike | None = None,
        channels: int | None = None,
        check_files: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        self.root = os.fspath(root) if root is not None else os.path.dirname(os.path.abspath(self.path))
        self.channels = check_channels(channels)
        self.min_side: int | None = None  # the side images are brought to next: large JPEGs decoded at 1/2 ... 1/8
        suffix = os.path.splitext(self.path)[1].lower()
        if suffix not in (".csv", ".tsv", ".jsonl", ".ndjson"):
            raise ValueError(f"{self.path}: expected a .csv, .tsv, .jsonl or .ndjson file, got {suffix or 'none'!r}")
        text = _read_text(self.path)
        if suffix in (".csv", ".tsv"):
            rows = _csv_rows(self.path, text, "\t" if suffix == ".tsv" else ",", image_column, caption_column)
        else:
            rows = _jsonl_rows(self.path, text, image_column, caption_column)

        self.samples: list[tuple[str, str]] = []
        self.lines: list[int] = []  # the listing line of each sample, for messages
        missing: list[tuple[int, str]] = []
        for line, image, caption in rows:
            if not image.strip():
                raise ValueError(f"{self.path}, line {line}, column {image_column!r}: empty image path")
            if not caption.strip():
                raise ValueError(f"{self.path}, line {line}, column {caption_column!r}: empty caption")
            image_path = os.path.join(self.root, os.path.expanduser(image.strip()))
            if check_files and not os.path.isfile(image_path):
                missing.append((line, image_path))
            self.samples.append((image_path, caption))
            self.lines.append(line)
        if missing:
            listed = "\n".join(f"  line {line}: {p}" for line, p in missing[:MAX_LISTED])
            more = f"\n  ... and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
            raise ValueError(
                f"{self.path}: {len(missing)} image file(s) in column {image_column!r} do not exist "
                f"(relative paths are resolved against {self.root!r}):\n{listed}{more}"
            )
        if not self.samples:
            raise ValueError(f"{self.path} lists no image-caption pairs: nothing to train on")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str] | Skipped:
        """The image as uint8 (C, H, W) and its caption, or Skipped for an image that cannot be decoded."""
        image_path, caption = self.samples[index]
        image = load_image_or_skip(image_path, self.channels, min_side=self.min_side)
        if isinstance(image, Skipped):
            return image
        return image, caption

    def __repr__(self) -> str:
        return f"ImageTextDataset({self.path!r}, samples={len(self)}, root={self.root!r})"
