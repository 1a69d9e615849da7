"""An index sized to a memory budget: the kind and parameters chosen for the collection, built shard by shard, with
its recall against exact search measured and recorded.

FAISS's own index factory does the work (flat, HNSW, IVF-Flat, OPQ + IVF-PQ); the choice is a few lines of
arithmetic on bytes per vector, stated here, rather than ``autofaiss`` (which pins older FAISS releases and reads
its own embedding layout, not ours).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from contrastkit.index.embedding_index import EmbeddingIndex

HNSW_M = 32
HNSW_MAX_ROWS = 250_000  # beyond this, building the graph on a few CPU cores takes over ~5 minutes: IVF instead
EXACT_MAX_ROWS = 100_000  # brute force answers this many in well under 10 ms per query
BASE_BYTES = 600 * 2**20  # the process itself (Python, torch, FAISS) before any vector
LIST_GROWTH = 1.6  # FAISS's inverted lists grow by doubling: 1.6x their contents measured after adding 2M vectors
EFFORTS = {"ivf": [1, 2, 4, 8, 16, 32, 64, 128, 256], "ivfpq": [1, 2, 4, 8, 16, 32, 64, 128, 256],
           "hnsw": [16, 32, 64, 128, 256, 512]}  # fmt: skip


def parse_memory(text: str) -> int:
    """``"2GB"``, ``"500MB"``, ``"1.5GiB"`` or a plain number of bytes -> bytes."""
    found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?i?b?)\s*", str(text).lower())
    if not found:
        raise ValueError(f"--max-memory: expected a size like 2GB or 500MB, got {text!r}")
    value, unit = float(found.group(1)), found.group(2).rstrip("b").rstrip("i")
    return int(value * 1024 ** " kmgt".index(unit or " "))


@dataclass(frozen=True)
class IndexPlan:
    """The index chosen for a collection and a budget."""

    kind: str  # exact, hnsw, ivf or ivfpq
    nlist: int  # IVF cells
    pq_m: int  # bytes per vector (ivfpq)
    index_bytes: int  # estimated memory of the built index
    train_rows: int  # vectors sampled to train it (IVF kinds)
    reason: str  # why this one

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def plan_index(n: int, dim: int, max_memory: int) -> IndexPlan:
    """The most exact index whose estimated memory (vectors, graph or codes, ids, cells, training sample, the process
    itself) fits ``max_memory`` bytes: flat up to 100k vectors, HNSW up to 250k, then IVF-Flat, then OPQ + IVF-PQ with
    the most bytes per vector that fit."""
    nlist = max(1, min(4096, int(4 * np.sqrt(max(n, 1)))))
    train_rows = min(n, max(64 * nlist, 50_000))
    budget = max_memory - BASE_BYTES - train_rows * dim * 4 - 100_000 * dim * 4  # sample and one chunk in memory
    cells = nlist * dim * 4
    candidates = [
        ("exact", n * dim * 4, n <= EXACT_MAX_ROWS, 0),
        ("hnsw", int(n * (dim * 4 + HNSW_M * 2 * 4 * 1.1)), n <= HNSW_MAX_ROWS, 0),
        ("ivf", int(n * (dim * 4 + 8) * LIST_GROWTH) + cells, True, 0),
    ]
    candidates += [("ivfpq", int(n * (m + 8) * LIST_GROWTH) + cells + dim * dim * 4, True, m)
                   for m in (64, 32, 16, 8) if dim % m == 0]  # fmt: skip
    for kind, size, allowed, m in candidates:
        if allowed and size <= budget:
            why = {"exact": "the vectors fit and brute force is fast at this size",
                   "hnsw": "the vectors and an HNSW graph fit",
                   "ivf": "the vectors fit but not a graph over them",
                   "ivfpq": f"only compressed codes fit: {m} bytes per vector"}[kind]  # fmt: skip
            return IndexPlan(kind, nlist, m or 16, size, train_rows if kind.startswith("ivf") else 0, why)
    need = int(n * 16 * LIST_GROWTH) + cells + BASE_BYTES
    raise ValueError(
        f"--max-memory {max_memory / 2**30:.2f} GiB is too small for {n:,} x {dim} vectors: even 8-byte codes need "
        f"about {need / 2**30:.2f} GiB"
    )


def sample_rows(embeddings, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, vectors)``: ``count`` distinct random rows of the collection, read chunk by chunk."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(embeddings), size=min(count, len(embeddings)), replace=False))
    out, start = [], 0
    for chunk in embeddings.chunks():
        inside = rows[(rows >= start) & (rows < start + len(chunk))]
        out.append(chunk[inside - start])
        start += len(chunk)
    return rows, np.concatenate(out)


def exact_neighbours(embeddings, queries: np.ndarray, rows: np.ndarray, k: int = 10, chunk: int = 16384) -> np.ndarray:
    """The exact top-``k`` rows by cosine similarity for each query, its own row left out, streamed over chunks of
    the collection (memory: one ``(Q, chunk)`` block of scores)."""
    from contrastkit.index.embedding_index import _normalise

    q = _normalise(queries)
    best_s = np.full((len(q), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(q), k), -1, dtype=np.int64)
    start = 0
    for block in embeddings.chunks(chunk):
        s = q @ _normalise(block).T  # (Q, c)
        local = rows - start
        mine = np.flatnonzero((local >= 0) & (local < len(block)))
        s[mine, local[mine]] = -np.inf  # not itself
        top = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]  # (Q, <=k) best of this block
        all_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        all_i = np.concatenate([best_i, top + start], 1)
        keep = np.argpartition(-all_s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(all_s, keep, 1), np.take_along_axis(all_i, keep, 1)
        start += len(block)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, 1)


def measure(index: EmbeddingIndex, queries: np.ndarray, rows: np.ndarray, truth: np.ndarray, k: int = 10) -> dict:
    """Recall@k against ``truth`` (own rows left out) and the mean milliseconds of one query at a time."""
    found = index.search(queries, k + 1).ids
    hits = [len(set(f[f != r][:k]) & set(t)) for f, r, t in zip(found, rows, truth, strict=True)]
    timed = queries[: min(100, len(queries))]
    start = time.perf_counter()
    for q in timed:
        index.search(q[None], k)
    ms = (time.perf_counter() - start) * 1000 / len(timed)
    return {"recall_at_10": float(np.mean(hits)) / k, "ms_per_query": ms}


def tune(index: EmbeddingIndex, embeddings, max_query_ms: float | None, queries: int = 1000) -> dict[str, Any]:
    """Measure recall@10 of held-out queries (rows of the collection, each not allowed to find itself) at each
    search effort, keep the most accurate one within ``max_query_ms``, and return what was measured."""
    rows, q = sample_rows(embeddings, queries, seed=1)
    truth = exact_neighbours(embeddings, q, rows)
    if index.kind == "exact":
        return {"queries": len(rows), **measure(index, q, rows, truth)}
    tried = []
    for effort in EFFORTS[index.kind]:
        if index.kind != "hnsw" and effort > index.params["nlist"]:
            break
        index.set_search_effort(effort)
        tried.append({"effort": effort, **measure(index, q, rows, truth)})
        if tried[-1]["recall_at_10"] >= 0.999 or (max_query_ms and tried[-1]["ms_per_query"] > max_query_ms):
            break
    within = [t for t in tried if not max_query_ms or t["ms_per_query"] <= max_query_ms] or tried[:1]
    best = max(within, key=lambda t: (t["recall_at_10"], -t["ms_per_query"]))
    index.set_search_effort(best["effort"])
    codes_only = {}
    if index.kind == "ivfpq" and index.params["rerank"]:  # what re-ranking with the vectors on disk adds
        rerank, index.params["rerank"] = index.params["rerank"], 0
        codes_only = {f"{key}_codes_only": value for key, value in measure(index, q, rows, truth).items()}
        index.params["rerank"] = rerank
    return {"queries": len(rows), **best, **codes_only, "tried": tried}
