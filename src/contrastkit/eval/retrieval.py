"""Retrieval quality of a ranking: Recall@k, mean average precision and mean reciprocal rank."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from contrastkit.eval._inputs import as_embeddings, same_dim


def retrieval_metrics(
    queries: Any, gallery: Any, relevant: Any, ks: Sequence[int] = (1, 5, 10), chunk_size: int = 1024
) -> dict[str, float]:
    """Rank the gallery by cosine similarity for each query and score the ranking.

    Args:
        queries: ``(M, D)`` query embeddings.
        gallery: ``(N, D)`` gallery embeddings.
        relevant: ``(M, N)`` boolean matrix (``relevant[i, j]``: gallery item j is a right answer for query i), or
            a pair ``(query_labels (M,), gallery_labels (N,))`` meaning "same label is relevant".
        ks: the cut-offs of Recall@k (the fraction of queries with at least one relevant item in the top k, the
            convention of image-text retrieval papers).
        chunk_size: queries ranked at a time.

    Returns:
        ``{"recall@1": ..., "recall@5": ..., "recall@10": ..., "map": ..., "mrr": ...}``: mAP is the mean over
        queries of the average precision over the full ranking; MRR the mean of 1 / rank of the first relevant item.
        Queries with no relevant item are refused (their scores are undefined).
    """
    q = F.normalize(as_embeddings("queries", queries), dim=1)
    g = F.normalize(as_embeddings("gallery", gallery), dim=1)
    same_dim("queries", q, "gallery", g)
    if isinstance(relevant, (tuple, list)) and len(relevant) == 2:
        q_labels, g_labels = (torch.as_tensor(np.asarray(x)) for x in relevant)
        if len(q_labels) != len(q) or len(g_labels) != len(g):
            raise ValueError(
                f"relevant labels have lengths ({len(q_labels)}, {len(g_labels)}) but queries and gallery have "
                f"({len(q)}, {len(g)}) rows"
            )
        rel = q_labels[:, None] == g_labels[None, :]  # (M, N)
    else:
        rel = torch.as_tensor(np.asarray(relevant)).bool()
        if rel.shape != (len(q), len(g)):
            raise ValueError(f"relevant must be ({len(q)}, {len(g)}) (queries x gallery), got {tuple(rel.shape)}")
    if not bool(rel.any(dim=1).all()):
        missing = int((~rel.any(dim=1)).nonzero()[0, 0])
        raise ValueError(f"query {missing} has no relevant gallery item: its recall and precision are undefined")
    if any(k < 1 for k in ks):
        raise ValueError(f"ks must be >= 1, got {list(ks)}")
    hits = {k: 0.0 for k in ks}
    ap_sum = rr_sum = 0.0
    for start in range(0, len(q), chunk_size):
        sim = q[start : start + chunk_size] @ g.T  # (m, N)
        order = sim.argsort(dim=1, descending=True, stable=True)  # (m, N)
        ranked = rel[start : start + chunk_size].gather(1, order).float()  # (m, N) relevance in rank order
        for k in ks:
            hits[k] += float(ranked[:, :k].any(dim=1).float().sum())
        positions = torch.arange(1, ranked.shape[1] + 1, dtype=torch.float32)  # (N,)
        precision = ranked.cumsum(dim=1) / positions  # (m, N) precision at each rank
        ap_sum += float(((precision * ranked).sum(dim=1) / ranked.sum(dim=1)).sum())
        first = ranked.argmax(dim=1).float() + 1  # rank of the first relevant item
        rr_sum += float((1.0 / first).sum())
    m = len(q)
    out = {f"recall@{k}": hits[k] / m for k in ks}
    out["map"], out["mrr"] = ap_sum / m, rr_sum / m
    return out
