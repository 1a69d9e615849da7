"""An index over ``contrastkit embed`` output (``build_index``), queried by an image or a text (``search_image``,
``search_text``): what ``contrastkit index build`` and ``contrastkit search`` run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from contrastkit.index.embedding_index import EmbeddingIndex

CHUNK = 100_000


def build_index(embeddings_dir: str | os.PathLike, out: str | os.PathLike, kind: str = "exact") -> Path:
    """Index ``embeddings_dir/embeddings.npy`` (added in chunks from a memory map) and keep its ids and encoder."""
    src = Path(embeddings_dir)
    for name in ("embeddings.npy", "ids.txt", "embed.json"):
        if not (src / name).is_file():
            raise FileNotFoundError(f"{src / name} does not exist: build an index from `contrastkit embed` output")
    vectors = np.load(src / "embeddings.npy", mmap_mode="r")
    ids = (src / "ids.txt").read_text().splitlines()
    if len(ids) != len(vectors):
        raise ValueError(f"{src}: ids.txt has {len(ids)} lines but embeddings.npy has {len(vectors)} rows")
    nlist = max(1, min(4096, int(4 * np.sqrt(len(vectors)))))
    index = EmbeddingIndex(vectors.shape[1], kind=kind, nlist=nlist)
    first = max(CHUNK, nlist) if kind == "ivf" else CHUNK
    index.add(np.asarray(vectors[:first], dtype=np.float32))
    for start in range(first, len(vectors), CHUNK):
        index.add(np.asarray(vectors[start : start + CHUNK], dtype=np.float32))
    out = index.save(out)
    embed_info = json.loads((src / "embed.json").read_text())
    Path(str(out) + ".ids.txt").write_text("\n".join(ids) + "\n")
    Path(str(out) + ".source.json").write_text(
        json.dumps({"embeddings": str(src.resolve()), "encoder_path": embed_info.get("encoder_path")}, indent=2) + "\n"
    )
    return out


def _index_and_encoder(index_path: str | os.PathLike, encoder: str | None) -> tuple[EmbeddingIndex, Any]:
    """The index and the encoder that embeds its queries (``encoder``, else the one recorded with the index)."""
    import contrastkit

    index = EmbeddingIndex.load(index_path)
    source = json.loads(Path(str(index_path) + ".source.json").read_text())
    encoder_path = encoder or source.get("encoder_path")
    if not encoder_path:
        raise ValueError(f"{index_path}: no encoder recorded for this index; pass --encoder ENCODER")
    return index, contrastkit.load_encoder(encoder_path)


def search_image(index_path: str | os.PathLike, image: str, k: int = 10, encoder: str | None = None) -> list[tuple]:
    """The ``k`` rows most similar to ``image``: ``[(score, id), ...]``, best first."""
    import torch

    from contrastkit.backbones.encoder import ImageEncoder
    from contrastkit.data.skip_report import Skipped, load_image_or_skip

    index, model = _index_and_encoder(index_path, encoder)
    if not isinstance(model, ImageEncoder):
        raise ValueError(
            f"{model.encoder_path}: a {model.kind} encoder cannot embed images: search this index with --text"
        )
    picture = load_image_or_skip(image, model.preprocess.in_chans)
    if isinstance(picture, Skipped):
        raise ValueError(f"{image}: {picture.reason} ({picture.detail})")
    with torch.no_grad():
        features = model.encode_image(model.preprocess(picture)[None])  # (1, D)
    result = index.search(features, k)
    ids = Path(str(index_path) + ".ids.txt").read_text().splitlines()
    return [(float(s), ids[i]) for s, i in zip(result.scores[0], result.ids[0], strict=True) if i >= 0]


def search_text(index_path: str | os.PathLike, text: str, k: int = 10, encoder: str | None = None) -> list[tuple]:
    """The ``k`` rows most similar to ``text``: ``[(score, id), ...]``, best first. The index's encoder must have a
    text tower: a clip run's (text queries against image embeddings) or a text-pairs run's (against texts)."""
    import torch

    from contrastkit.backbones.encoder import TextEncoder

    if not text.strip():
        raise ValueError("--text is empty: give a query sentence")
    index, model = _index_and_encoder(index_path, encoder)
    if not isinstance(model, TextEncoder):
        raise ValueError(
            f"{model.encoder_path}: an image-only encoder cannot embed text; search with --image, or index "
            "embeddings of an encoder from a clip run (images) or a text-pairs run (texts)"
        )
    with torch.no_grad():
        features = model.encode_text([text])  # (1, D)
    result = index.search(features.float(), k)
    ids = Path(str(index_path) + ".ids.txt").read_text().splitlines()
    return [(float(s), ids[i]) for s, i in zip(result.scores[0], result.ids[0], strict=True) if i >= 0]
