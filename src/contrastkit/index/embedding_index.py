"""Similarity search over embeddings on FAISS: exact inner product by default, IVF or HNSW for large collections."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("exact", "ivf", "hnsw", "ivfpq")
META_SUFFIX = ".json"
MISSING = np.finfo(np.float32).min  # the score FAISS gives a missing result (-1 id) under inner product


@dataclass(frozen=True)
class SearchResult:
    """The ``k`` best gallery rows for each query, best first."""

    scores: np.ndarray  # (M, k') float32 cosine similarities (inner products of normalised vectors)
    ids: np.ndarray  # (M, k') int64 row ids in the index (-1 where an approximate index found fewer than k')


def _as_vectors(name: str, x: Any, dim: int | None = None) -> np.ndarray:
    a = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name} has dimension {a.shape[1]} but the index holds {dim}-dimensional embeddings")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).any(axis=1).sum())
        raise ValueError(f"{name} has NaN or infinite values in {bad} of {a.shape[0]} rows")
    return a


def check_k(k: Any) -> int:
    """``k`` as an int when it is a whole number >= 1; anything else is refused with a one-line message."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return int(k)


def _normalise(a: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.maximum(norms, 1e-12)


class EmbeddingIndex:
    """Cosine-similarity search: vectors are L2-normalised and searched by inner product with FAISS.

    Args:
        dim: embedding dimension D.
        kind: ``"exact"`` (``IndexFlatIP``, brute force, the default), ``"ivf"`` (``IndexIVFFlat``: ``nlist``
            k-means cells, ``nprobe`` visited per query; trained on the first vectors added) or ``"hnsw"``
            (``IndexHNSWFlat`` graph, ``m`` links per node, ``ef_search`` candidates per query).
            ``"ivfpq"``: ``OPQ{pq_m},IVF{nlist},PQ{pq_m}`` (Ge et al. 2013; Jegou et al. 2011): each vector stored in
            ``pq_m`` bytes, for collections larger than memory; it needs :meth:`train` on a sample first.
        nlist: IVF cells (Jegou et al. 2011).
        nprobe: IVF cells visited per query.
        pq_m: bytes per vector of ``"ivfpq"`` (sub-quantizers; must divide the dimension).
        rerank: with ``"ivfpq"`` and the full vectors attached (:meth:`attach_vectors`), fetch ``k * rerank``
            candidates by their codes and order them by exact similarity (0: codes only).
        m: HNSW links per node (Malkov & Yashunin 2018).
        ef_search: HNSW candidates per query.
        ef_construction: HNSW candidates while building; FAISS's default of 40 caps recall near 0.94 on clustered
            data, hence 200.
    """

    def __init__(
        self,
        dim: int,
        kind: str = "exact",
        nlist: int = 1024,
        nprobe: int = 32,
        m: int = 32,
        ef_search: int = 128,
        ef_construction: int = 200,
        pq_m: int = 16,
        rerank: int = 0,
    ) -> None:
        import faiss

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim, self.kind = int(dim), kind
        self.params = {
            "nlist": nlist,
            "nprobe": nprobe,
            "m": m,
            "ef_search": ef_search,
            "ef_construction": ef_construction,
            "pq_m": pq_m,
            "rerank": rerank,
        }
        self.vectors: Any = None  # the full vectors on disk (an Embeddings), for re-ranking IVF-PQ candidates
        self.quality: dict[str, Any] = {}  # measured recall and speed, saved with the index (build_index)
        if kind == "exact":
            self.index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            self._quantizer = faiss.IndexFlatIP(dim)
            self.index = faiss.IndexIVFFlat(self._quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            self.index.nprobe = nprobe
        elif kind == "ivfpq":
            if dim % pq_m:
                raise ValueError(f"pq_m={pq_m} must divide the dimension {dim}")
            self.index = faiss.index_factory(dim, f"OPQ{pq_m},IVF{nlist},PQ{pq_m}", faiss.METRIC_INNER_PRODUCT)
            faiss.extract_index_ivf(self.index).nprobe = nprobe
        else:
            self.index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efSearch = ef_search
            self.index.hnsw.efConstruction = ef_construction

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def train(self, sample: Any) -> None:
        """Fit an IVF / IVF-PQ index's cells (and codebooks) on a ``(N, D)`` sample of the collection."""
        x = _normalise(_as_vectors("sample", sample, self.dim))
        if len(x) < self.params["nlist"]:
            raise ValueError(f"{self.params['nlist']} IVF cells need at least as many training vectors, got {len(x)}")
        self.index.train(x)

    def set_search_effort(self, value: int) -> None:
        """Cells visited per query (IVF kinds: nprobe) or candidates kept (HNSW: efSearch)."""
        import faiss

        if self.kind in ("ivf", "ivfpq"):
            faiss.extract_index_ivf(self.index).nprobe = int(value)
            self.params["nprobe"] = int(value)
        elif self.kind == "hnsw":
            self.index.hnsw.efSearch = int(value)
            self.params["ef_search"] = int(value)

    def add(self, embeddings: Any) -> None:
        """Append ``(N, D)`` embeddings; their ids continue from ``len(self)``. An IVF index trains on the first add
        (it needs at least ``nlist`` vectors)."""
        x = _normalise(_as_vectors("embeddings", embeddings, self.dim))
        if not self.index.is_trained:
            if len(x) < self.params["nlist"]:
                raise ValueError(
                    f"an IVF index with nlist={self.params['nlist']} needs at least that many vectors in its first "
                    f"add, got {len(x)}: add more at once or lower nlist"
                )
            self.index.train(x)
        self.index.add(x)

    def attach_vectors(self, vectors: Any, rerank: int) -> None:
        """Re-rank an IVF-PQ index's answers with the full vectors, left on disk: each search takes ``k * rerank``
        candidates by their compressed codes, reads those rows from ``vectors`` (an
        :class:`~contrastkit.index.embedding_shards.Embeddings`: one read per row) and orders them by exact
        cosine similarity (the refinement step of Jegou et al. 2011, Sec. IV-B, without holding the vectors in memory).
        ``rerank=0`` searches the codes only."""
        if self.kind != "ivfpq":
            raise ValueError(f"re-ranking is for compressed (ivfpq) indexes; this one is {self.kind}")
        if rerank < 0:
            raise ValueError(f"rerank must be >= 0, got {rerank}")
        if len(vectors) != len(self) or vectors.dim != self.dim:
            raise ValueError(
                f"{getattr(vectors, 'folder', 'the vectors')}: {len(vectors)} x {vectors.dim} vectors for an index of "
                f"{len(self)} x {self.dim}: not the collection this index was built from"
            )
        self.vectors, self.params["rerank"] = vectors, int(rerank)

    def search(self, queries: Any, k: int = 10) -> SearchResult:
        """The ``k`` most similar rows to each of ``(M, D)`` queries (cosine similarity, best first).

        ``k`` is clamped to the index size: the result has ``k' = min(k, len(self))`` columns, so a search allocates
        for what it can return, never for ``k`` itself (``k = 10**9`` on 1,000 rows returns ``(M, 1000)``). For
        ``k <= len(self)`` the shape is ``(M, k)`` as before. An approximate index (IVF, HNSW) may still find fewer
        than ``k'`` rows for a query: those slots hold id -1 (and the lowest float32 score). ``k < 1`` is refused.
        """
        k = check_k(k)
        if len(self) == 0:
            raise ValueError("the index is empty: add embeddings before searching")
        k = min(k, len(self))
        q = _normalise(_as_vectors("queries", queries, self.dim))
        if self.vectors is None or not self.params["rerank"]:
            scores, ids = self.index.search(q, k)
            return SearchResult(scores, ids)
        depth = min(k * self.params["rerank"], len(self))
        _, candidates = self.index.search(q, depth)  # (M, depth) by their codes
        found = candidates >= 0
        rows, where = np.unique(candidates[found], return_inverse=True)
        full = _normalise(self.vectors.take(rows))  # (R, D) each distinct candidate read once
        exact = np.full(candidates.shape, MISSING, dtype=np.float32)  # (M, k * rerank)
        exact[found] = np.einsum("ij,ij->i", np.broadcast_to(q[:, None], (*candidates.shape, self.dim))[found],
                                 full[where])  # fmt: skip
        best = np.argsort(-exact, axis=1, kind="stable")[:, :k]  # (M, k)
        scores, ids = np.take_along_axis(exact, best, 1), np.take_along_axis(candidates, best, 1)
        ids[scores == MISSING] = -1
        return SearchResult(scores, ids)

    def near_duplicates(self, threshold: float = 0.95, k: int = 10) -> list[list[int]]:
        """Groups of rows whose cosine similarity is >= ``threshold`` (connected components over the ``k``
        nearest neighbours of each row), largest group first; rows without a near duplicate are left out."""
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
        n = len(self)
        if n == 0:
            return []
        vectors = self.index.reconstruct_n(0, n) if self.kind not in ("ivf", "ivfpq") else None
        if vectors is None:
            raise ValueError("near_duplicates needs an exact or HNSW index (IVF kinds keep no vectors in order)")
        result = self.search(vectors, min(k + 1, n))
        parent = list(range(n))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(n):
            for score, j in zip(result.scores[i], result.ids[i], strict=True):
                if j >= 0 and j != i and score >= threshold:
                    parent[find(i)] = find(int(j))
        groups: dict[int, list[int]] = {}
        for i in range(n):
            groups.setdefault(find(i), []).append(i)
        return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the FAISS index to ``path`` and its settings to ``path`` + ``.json`` (temp file + rename)."""
        import faiss

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, path)
        meta = {"format": "contrastkit-index", "dim": self.dim, "kind": self.kind, "count": len(self), **self.params}
        if self.quality:
            meta["quality"] = self.quality
        Path(str(path) + META_SUFFIX).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> EmbeddingIndex:
        """An index written by :meth:`save`; a file that is not one is refused by name."""
        import faiss

        path = Path(path)
        meta_path = Path(str(path) + META_SUFFIX)
        if not path.is_file():
            raise FileNotFoundError(f"index file {str(path)!r} does not exist")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: no readable {meta_path.name} beside it ({e}); not a contrastkit index") from None
        if meta.get("format") != "contrastkit-index":
            raise ValueError(f"{meta_path}: not a contrastkit index description")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise ValueError(f"{path}: not a readable FAISS index ({str(e).splitlines()[0]})") from None
        if index.d != meta["dim"]:
            raise ValueError(f"{path}: index dimension {index.d} does not match {meta_path.name} ({meta['dim']})")
        out = cls(
            meta["dim"],
            meta["kind"],
            meta["nlist"],
            meta["nprobe"],
            meta["m"],
            meta["ef_search"],
            meta.get("ef_construction", 200),
            meta.get("pq_m", 16),
            meta.get("rerank", 0),
        )
        out.index = index
        out.set_search_effort(meta["ef_search"] if meta["kind"] == "hnsw" else meta["nprobe"])
        out.quality = meta.get("quality", {})
        return out
