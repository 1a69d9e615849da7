"""An index over ``contrastkit embed`` output (``build_index``), queried by an image or a text (``search_image``,
``search_text``): what ``contrastkit index build`` and ``contrastkit search`` run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from contrastkit.index.embedding_index import EmbeddingIndex, check_k

CHUNK = 100_000


def build_index(
    embeddings_dir: str | os.PathLike,
    out: str | os.PathLike,
    kind: str | None = None,
    max_memory: int | None = None,
    max_query_ms: float | None = None,
    rerank: int = 10,
) -> Path:
    """Index the output of ``contrastkit embed`` (one folder or a sharded one, read and added chunk by chunk, never
    all loaded) and keep its ids and encoder.

    Args:
        kind: ``exact`` (default without ``max_memory``), ``hnsw``, ``ivf`` or ``ivfpq``.
        max_memory: bytes the build may use: the kind and its parameters are chosen to fit
            (:func:`~contrastkit.index.sized_index.plan_index`); not together with ``kind``.
        max_query_ms: search effort (IVF cells visited, HNSW candidates) tuned for the best recall within this
            many milliseconds per query.
        rerank: a compressed (ivfpq) index orders ``10 * rerank`` candidates of a top-10 search by the exact
            vectors, read from ``embeddings_dir`` on disk when searched (0: by the codes only; the folder must then
            stay where it is, see :func:`load_index`).

    Approximate indexes (and any built with ``max_memory`` or ``max_query_ms``) record their recall@10 against exact
    search on 1,000 held-out queries, and their milliseconds per query, in the index's ``.json`` (``quality``).
    """
    from contrastkit.index.embedding_shards import Embeddings
    from contrastkit.index.sized_index import plan_index, sample_rows, tune

    if kind is not None and max_memory is not None:
        raise ValueError("give either --kind or --max-memory (which chooses the kind), not both")
    src = Path(embeddings_dir)
    embeddings = Embeddings(src)
    if len(embeddings) == 0:
        raise ValueError(f"{src}: no embeddings to index")
    n, dim = len(embeddings), embeddings.dim
    plan = plan_index(n, dim, max_memory) if max_memory is not None else None
    kind = plan.kind if plan else kind or "exact"
    nlist = plan.nlist if plan else max(1, min(4096, int(4 * np.sqrt(n))))
    index = EmbeddingIndex(dim, kind=kind, nlist=nlist, pq_m=plan.pq_m if plan else 16)
    if kind in ("ivf", "ivfpq"):  # cells (and codebooks) from a random sample of the whole collection
        if n < nlist:
            raise ValueError(f"{src}: {n} vectors are too few for an IVF index of {nlist} cells; use --kind exact")
        _, sample = sample_rows(embeddings, plan.train_rows if plan else min(n, max(64 * nlist, 50_000)))
        index.train(sample)
        del sample
    for chunk in embeddings.chunks(CHUNK):
        index.add(chunk)
    if kind == "ivfpq":
        index.attach_vectors(embeddings, rerank)
    if kind != "exact" or max_query_ms is not None or plan is not None:
        index.quality = {**({"plan": plan.to_dict()} if plan else {}), **tune(index, embeddings, max_query_ms)}
    out = index.save(out)
    embeddings.write_ids(str(out) + ".ids.txt")
    Path(str(out) + ".source.json").write_text(
        json.dumps({"embeddings": str(src.resolve()), "encoder_path": embeddings.encoder_path}, indent=2) + "\n",
        encoding="utf-8",
    )
    return out


def load_index(index_path: str | os.PathLike) -> EmbeddingIndex:
    """An index written by :func:`build_index`, with its on-disk vectors attached when it re-ranks with them. If they
    have moved, it searches by its codes alone and says so once (its recall is then the ``recall_at_10_codes_only``
    recorded at build time)."""
    import sys

    index = EmbeddingIndex.load(index_path)
    if index.kind == "ivfpq" and index.params["rerank"]:
        from contrastkit.index.embedding_shards import Embeddings

        try:
            source = json.loads(Path(str(index_path) + ".source.json").read_text(encoding="utf-8"))["embeddings"]
            index.attach_vectors(Embeddings(source), index.params["rerank"])
        except (OSError, ValueError, KeyError) as e:
            print(
                f"warning: {index_path}: its vectors for re-ranking are not usable ({e}); searching by the "
                "compressed codes only (lower recall): rebuild the index, or put the embeddings back",
                file=sys.stderr,
            )
            index.params["rerank"] = 0
    return index


def query_encoder(index_path: str | os.PathLike, index: EmbeddingIndex, encoder: str | None) -> Any:
    """The encoder that embeds queries of the index at ``index_path``: ``encoder``, else the one recorded with the
    index, else None. One whose embeddings have another dimension than the index's is refused here, before any
    query, by one line naming both files and both dimensions (``contrastkit search`` and ``contrastkit serve``)."""
    from contrastkit.backbones.encoder_file import load_encoder

    source = Path(str(index_path) + ".source.json")
    encoder_path = encoder or (
        json.loads(source.read_text(encoding="utf-8")).get("encoder_path") if source.is_file() else None
    )
    if not encoder_path:
        return None
    model = load_encoder(encoder_path)
    if int(model.feature_dim) != index.dim:
        raise ValueError(
            f"the encoder {encoder_path} gives {model.feature_dim}-dimensional embeddings but the index {index_path} "
            f"holds {index.dim}-dimensional ones: pass the --encoder whose embeddings the index was built from"
        )
    return model


def _index_and_encoder(index_path: str | os.PathLike, encoder: str | None) -> tuple[EmbeddingIndex, Any]:
    """The index and the encoder that embeds its queries (``encoder``, else the one recorded with the index)."""
    index = load_index(index_path)
    model = query_encoder(index_path, index, encoder)
    if model is None:
        raise ValueError(f"{index_path}: no encoder recorded for this index; pass --encoder ENCODER")
    return index, model


def _ranked(index_path: str | os.PathLike, index: EmbeddingIndex, features: Any, k: int) -> list[tuple]:
    """``[(score, id), ...]`` of the ``min(k, len(index))`` rows nearest to one query's ``(1, D)`` features."""
    result = index.search(features, k)  # (1, k'): k clamped to the index size
    ids = Path(str(index_path) + ".ids.txt").read_text(encoding="utf-8").splitlines()
    return [(float(s), ids[i]) for s, i in zip(result.scores[0], result.ids[0], strict=True) if i >= 0]


def search_image(index_path: str | os.PathLike, image: str, k: int = 10, encoder: str | None = None) -> list[tuple]:
    """The ``k`` rows most similar to ``image``: ``[(score, id), ...]``, best first; all of them when the index holds
    fewer than ``k`` (``k`` is clamped to the index size, so a huge ``k`` costs no memory). ``k < 1`` is refused."""
    import torch

    from contrastkit.backbones.encoder import ImageEncoder
    from contrastkit.data.skip_report import Skipped, load_image_or_skip

    check_k(k)
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
    return _ranked(index_path, index, features, k)


def search_text(index_path: str | os.PathLike, text: str, k: int = 10, encoder: str | None = None) -> list[tuple]:
    """The ``k`` rows most similar to ``text``: ``[(score, id), ...]``, best first (``k`` clamped to the index size,
    as in :func:`search_image`). The index's encoder must have a text tower: a clip run's (text queries against image
    embeddings) or a text-pairs run's (against texts)."""
    import torch

    from contrastkit.backbones.encoder import TextEncoder

    check_k(k)
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
    return _ranked(index_path, index, features.float(), k)
