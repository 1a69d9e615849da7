"""Labelled texts for few-shot classification: ``{"text", "label"}`` rows of a JSON-lines, CSV or TSV file.

Every refusal is one line naming the file, the row and what is wrong (not UTF-8, a missing field, an empty text, an
empty file, a class too small to train and test on), raised before anything is trained or written.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contrastkit.data.image_text_pairs import jsonl_records

TEXT_SUFFIXES = (".jsonl", ".csv", ".tsv")  # labelled files; `contrastkit predict` also reads plain .txt lines


@dataclass
class LabelledTexts:
    """Texts and their class names, in file order."""

    texts: list[str]
    labels: list[str]
    source: str  # the file they came from (for messages)

    def __len__(self) -> int:
        return len(self.texts)

    def classes(self) -> list[str]:
        """The class names, sorted (numbers as numbers: "2" before "10")."""
        names = set(self.labels)
        return sorted(names, key=lambda c: (0, int(c), c) if c.lstrip("-").isdigit() else (1, 0, c))

    def ids(self, classes: list[str]) -> np.ndarray:
        """Class ids ``(N,)`` of the labels in ``classes``' order; a label not in ``classes`` is refused."""
        index = {c: i for i, c in enumerate(classes)}
        for row, label in enumerate(self.labels, start=1):
            if label not in index:
                raise ValueError(
                    f"{self.source}: row {row} has the label {label!r}, never seen in training (classes: "
                    f"{', '.join(classes[:20])}{', ...' if len(classes) > 20 else ''})"
                )
        return np.array([index[label] for label in self.labels], dtype=np.int64)

    def subset(self, rows: np.ndarray, source: str | None = None) -> LabelledTexts:
        return LabelledTexts([self.texts[i] for i in rows], [self.labels[i] for i in rows], source or self.source)


def is_text_data(data: object) -> bool:
    """Whether ``data`` names labelled texts (a ``.jsonl`` / ``.csv`` / ``.tsv`` file, or :class:`LabelledTexts`)
    rather than images (a built-in data set, a folder)."""
    return isinstance(data, LabelledTexts) or (
        isinstance(data, str | os.PathLike) and Path(data).suffix.lower() in TEXT_SUFFIXES
    )


def decode_utf8(path: str | os.PathLike) -> str:
    """The file's text; bytes that are not UTF-8 are refused with the line and column where they are."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ValueError(
            f"{path}: line {line}, column {column} is not UTF-8 (byte 0x{data[e.start]:02x}): save the file as UTF-8"
        ) from None


def _rows(path: Path, text: str) -> list[tuple[int, dict]]:
    """(line number, row) of a JSON-lines file, or of a CSV / TSV file with a header row."""
    if path.suffix == ".jsonl":
        return list(jsonl_records(str(path), text))
    reader = csv.DictReader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ",")
    return [(number, row) for number, row in enumerate(reader, start=2) if any((v or "").strip() for v in row.values())]


def read_labelled_texts(
    path: str | os.PathLike, text_field: str = "text", label_field: str | None = "label"
) -> LabelledTexts:
    """The ``text_field`` and ``label_field`` of every row of ``path`` (``.jsonl``, ``.csv`` or ``.tsv``; CSV and
    TSV name their fields in a header row). Labels are read as strings (``3`` and ``"3"`` are one class);
    ``label_field=None`` reads the texts only.

    Raises:
        FileNotFoundError: no such file.
        ValueError: another format, bytes that are not UTF-8, an empty file, a row without either field or with an
            empty text (each named with its line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix not in TEXT_SUFFIXES:
        raise ValueError(f"{path}: labelled texts are read from {', '.join(TEXT_SUFFIXES)} files")
    rows = _rows(path, decode_utf8(path))
    if not rows:
        raise ValueError(f"{path} is empty: expected rows with a {text_field!r} and a {label_field!r} field")
    texts, labels = [], []
    for number, row in rows:
        for field, flag in ((text_field, "--text-field"), (label_field, "--label-field")):
            if field is not None and row.get(field) is None:
                raise ValueError(
                    f"{path}: line {number} has no field {field!r} (it has {', '.join(map(repr, row)) or 'none'}); "
                    f"name the field with {flag}"
                )
        text = str(row[text_field])
        if not text.strip():
            raise ValueError(f"{path}: line {number}: the text ({text_field!r}) is empty")
        texts.append(text)
        if label_field is not None:
            labels.append(str(row[label_field]).strip())
    return LabelledTexts(texts, labels, str(path))


def read_texts_to_classify(path: str | os.PathLike, text_field: str = "text") -> tuple[list[str], list[str] | None]:
    """Texts to classify and, where the file has a ``label`` field on every row, their labels (else None):
    ``.txt`` (one text per line), ``.jsonl``, ``.csv`` or ``.tsv``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".txt":
        texts = [line for line in decode_utf8(path).splitlines() if line.strip()]
        if not texts:
            raise ValueError(f"{path} is empty: expected one text per line")
        return texts, None
    if path.suffix not in TEXT_SUFFIXES:
        raise ValueError(f"{path}: texts are read from .txt, {', '.join(TEXT_SUFFIXES)} files")
    rows = _rows(path, decode_utf8(path))
    if not rows:
        raise ValueError(f"{path} is empty: expected rows with a {text_field!r} field")
    labelled = all(row.get("label") is not None for _, row in rows)
    data = read_labelled_texts(path, text_field, "label" if labelled else None)
    return data.texts, data.labels if labelled else None


def held_out_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): a seeded ``fraction`` of each class held out (at least one row of each class on both
    sides), so every class is trained on and tested."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        cut = min(max(1, round(fraction * len(rows))), len(rows) - 1)
        test.extend(rows[:cut])
        train.extend(rows[cut:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def check_class_sizes(data: LabelledTexts, minimum: int, why: str) -> None:
    """Refuse classes with fewer than ``minimum`` rows, naming the smallest."""
    counts: dict[str, int] = {}
    for label in data.labels:
        counts[label] = counts.get(label, 0) + 1
    small = sorted((n, c) for c, n in counts.items() if n < minimum)
    if small:
        n, name = small[0]
        more = f" (and {len(small) - 1} more classes)" if len(small) > 1 else ""
        raise ValueError(f"{data.source}: class {name!r} has {n} example{'s' * (n != 1)}{more}; {why}")
    if len(counts) < 2:
        raise ValueError(f"{data.source}: every row has the label {next(iter(counts))!r}: a classifier needs 2 classes")
