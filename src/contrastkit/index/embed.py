"""``contrastkit embed``: the embeddings of a whole data set, streamed to disk in bounded memory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from contrastkit.backbones.embed_by_length import encode_by_length
from contrastkit.data.multi_view_dataset import match_channels
from contrastkit.data.skip_report import Skipped, SkipReport, split_skipped


class _Prepared(Dataset):
    """Items ``(uint8 (C, S, S), id)`` at the encoder's channels and input size, for the data set's ``rows`` (all by
    default); the id is the file path, else the data-set index. Unreadable items stay Skipped."""

    def __init__(self, dataset: Any, channels: int, size: int, rows: range | None = None) -> None:
        self.dataset, self.channels, self.size = dataset, channels, size
        self.rows = range(len(dataset)) if rows is None else rows
        samples = getattr(dataset, "samples", None)
        self.ids = [str(p) for p, _ in samples] if samples is not None else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str] | Skipped:
        from contrastkit.data.resize_center_crop import resize_center_crop

        row = self.rows[index]
        item = self.dataset[row]
        if isinstance(item, Skipped):
            return item
        image = resize_center_crop(match_channels(item[0], self.channels), self.size)
        return image, self.ids[row] if self.ids is not None else str(row)


def _collate(batch: list[Any]) -> tuple[torch.Tensor, list[str], list[tuple[str, str, str]]]:
    kept, skipped = split_skipped(batch)
    images = torch.stack([im for im, _ in kept]) if kept else torch.empty(0, dtype=torch.uint8)
    return images, [i for _, i in kept], [(s.path, s.reason, s.detail) for s in skipped]


def embed_dataset(
    encoder: torch.nn.Module,
    dataset: Any,
    out_dir: str | os.PathLike,
    batch_size: int = 256,
    num_workers: int = 2,
    float16: bool = False,
    progress: bool = True,
    rows: range | None = None,
) -> dict[str, Any]:
    """Write ``embeddings.npy`` (float32, or float16), ``ids.txt`` (a file path or data-set index per row) and
    ``embed.json`` for every readable image of ``dataset``.

    Rows are written into a memory-mapped ``.npy`` as batches arrive, so memory stays one batch whatever the
    data size. Unreadable images are skipped, counted and listed in ``embed.json``.

    Args:
        encoder: from :func:`contrastkit.load_encoder` (its ``encoder_info`` gives channels, size, mean, std).
        dataset: a map-style data set of ``(uint8 image, target)`` items (``load_dataset``).
        out_dir: output folder (created).
        rows: embed only these rows of the data set (one shard of a sharded job); ids stay the data set's.
    """
    from tqdm.auto import tqdm

    from contrastkit.eval.embed_images import embed_images

    info = encoder.encoder_info
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prepared = _Prepared(dataset, int(info["in_chans"]), int(info["input_size"]), rows)
    n = len(prepared)
    if n == 0:
        raise ValueError(f"{dataset!r} has no samples: nothing to embed")
    loader = DataLoader(prepared, batch_size=batch_size, num_workers=num_workers, collate_fn=_collate)
    dtype = np.float16 if float16 else np.float32
    dim = int(encoder.feature_dim)
    partial = out / ".embeddings.partial.npy"
    rows = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=(n, dim))
    skips, written = SkipReport(), 0
    device = next(encoder.parameters()).device
    with open(out / "ids.txt", "w", encoding="utf-8") as ids_file:
        for images, ids, skipped in tqdm(loader, desc="embed", unit="batch", disable=not progress):
            skips.add(Skipped(*s) for s in skipped)
            if len(ids) == 0:
                continue
            features = embed_images(encoder, images, tuple(info["mean"]), tuple(info["std"]), prepared.size, device)
            rows[written : written + len(ids)] = features.numpy().astype(dtype)  # (b, D)
            written += len(ids)
            ids_file.writelines(f"{i}\n" for i in ids)
    rows.flush()
    del rows
    final = out / "embeddings.npy"
    if written == n:
        os.replace(partial, final)
    else:  # drop the rows of skipped images, copying in chunks
        source = np.load(partial, mmap_mode="r")
        target = np.lib.format.open_memmap(final, mode="w+", dtype=dtype, shape=(written, dim))
        for start in range(0, written, 65536):
            target[start : start + 65536] = source[start : min(start + 65536, written)]
        target.flush()
        del source, target
        partial.unlink()
    summary = {
        "rows": written,
        "dim": dim,
        "dtype": np.dtype(dtype).name,
        "skipped": [{"path": s.path, "reason": s.reason} for s in skips.items],
        "encoder": {k: info[k] for k in ("backbone", "in_chans", "input_size", "method") if k in info},
        "encoder_path": str(Path(getattr(encoder, "encoder_path", "")).resolve())
        if hasattr(encoder, "encoder_path")
        else None,
    }
    (out / "embed.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def read_texts(path: str | os.PathLike, field: str = "text") -> list[str]:
    """Texts to embed: one per line of a ``.txt`` file, or the ``field`` of each JSON line of a ``.jsonl`` file."""
    from contrastkit.data.image_text_pairs import jsonl_records

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        texts = [line.strip() for line in text.split("\n") if line.strip()]
    else:
        texts = []
        for number, record in jsonl_records(str(path), text):
            value = record.get(field)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{path}, line {number}: no non-empty string field {field!r}")
            texts.append(value.strip())
    if not texts:
        raise ValueError(f"{path} holds no texts: nothing to embed")
    return texts


def embed_texts(
    encoder: torch.nn.Module,
    texts: list[str],
    out_dir: str | os.PathLike,
    batch_size: int = 128,
    float16: bool = False,
) -> dict[str, Any]:
    """Like :func:`embed_dataset` for texts, with a text encoder (``kind: text``) or a clip run's dual encoder:
    ``embeddings.npy`` (L2-normalised rows, written batch by batch into a memory map), ``ids.txt`` (the texts
    themselves, one per line) and ``embed.json``."""
    from contrastkit.backbones.encoder import TextEncoder

    info = encoder.encoder_info
    if not isinstance(encoder, TextEncoder):
        raise ValueError(f"{encoder.encoder_path}: an image encoder cannot embed texts (kind {encoder.kind})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtype = np.float16 if float16 else np.float32
    dim = int(encoder.feature_dim)
    partial = out / ".embeddings.partial.npy"
    rows = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=(len(texts), dim))
    with torch.no_grad():
        for chunk, z in encode_by_length(encoder.encode_text, texts, batch_size):  # z: (b, D), L2-normalised
            rows[chunk] = z.float().cpu().numpy().astype(dtype)  # (b, D)
    rows.flush()
    del rows
    os.replace(partial, out / "embeddings.npy")
    (out / "ids.txt").write_text("".join(" ".join(t.split()) + "\n" for t in texts), encoding="utf-8")
    summary = {
        "rows": len(texts),
        "dim": dim,
        "dtype": np.dtype(dtype).name,
        "skipped": [],
        "encoder": {"kind": encoder.kind, "method": info.get("method")},
        "encoder_path": str(Path(encoder.encoder_path).resolve()),
    }
    (out / "embed.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
