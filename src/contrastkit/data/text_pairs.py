"""(anchor, positive[, hard negative]) text pairs from a JSON-lines or CSV / TSV file, for text-pairs training."""

from __future__ import annotations

import csv
import io
import os

from contrastkit.data.image_text_pairs import _read_text, jsonl_records


class TextPairsDataset:
    """Text pairs listed one per line: ``{"anchor": ..., "positive": ..., "negative": ...}`` (JSON lines) or a CSV /
    TSV with a header naming those columns. The negative column is optional (then no hard negatives).

    Each item is ``(anchor, (positive,))`` or ``(anchor, (positive, negative))``. A malformed line, a missing
    column or an empty text raises a ValueError naming the file and the 1-based line.

    Args:
        path: the ``.jsonl`` / ``.ndjson`` / ``.csv`` / ``.tsv`` file.
        anchor_column: column (key) of the anchor / query text.
        positive_column: column of its positive.
        negative_column: column of the hard negative, used when present in the file.
    """

    classes = None

    def __init__(
        self,
        path: str | os.PathLike,
        anchor_column: str = "anchor",
        positive_column: str = "positive",
        negative_column: str = "negative",
    ) -> None:
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"text pairs file {self.path!r} does not exist")
        suffix = os.path.splitext(self.path)[1].lower()
        if suffix not in (".jsonl", ".ndjson", ".csv", ".tsv"):
            raise ValueError(f"{self.path}: expected a .jsonl, .ndjson, .csv or .tsv file, got {suffix or 'none'!r}")
        text = _read_text(self.path)
        records = jsonl_records(self.path, text) if suffix in (".jsonl", ".ndjson") else self._csv(text, suffix)
        columns = [anchor_column, positive_column]
        self.has_negatives = False
        self.samples: list[tuple[str, tuple[str, ...]]] = []
        for line, record in records:
            if not self.samples:
                self.has_negatives = negative_column in record
                if self.has_negatives:
                    columns.append(negative_column)
            texts = []
            for column in columns:
                value = record.get(column)
                if value is None:
                    raise ValueError(f"{self.path}, line {line}: missing column {column!r}; found {sorted(record)}")
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f"{self.path}, line {line}, column {column!r}: expected a non-empty string")
                texts.append(value)
            self.samples.append((texts[0], tuple(texts[1:])))
        if len(self.samples) < 2:
            raise ValueError(f"{self.path} lists {len(self.samples)} pairs: in-batch negatives need at least 2")

    def _csv(self, text: str, suffix: str):
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise ValueError(f"{self.path} is empty: expected a header line naming the columns")
        for row in reader:
            if not row or all(not f.strip() for f in row):
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{self.path}, line {reader.line_num}: {len(row)} fields, the header has {len(header)}"
                )
            yield reader.line_num, dict(zip(header, row, strict=True))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[str, tuple[str, ...]]:
        return self.samples[index]

    def __repr__(self) -> str:
        return f"TextPairsDataset({self.path!r}, pairs={len(self)}, hard_negatives={self.has_negatives})"
