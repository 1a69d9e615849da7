"""Weighted cosine k-nearest-neighbour classification of frozen embeddings (the standard SSL kNN monitor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.eval._inputs import as_embeddings, as_labels, same_dim


@dataclass(frozen=True)
class KNNResult:
    """Accuracy of a kNN classifier."""

    top1: float  # fraction of queries whose best-scored class is right
    top5: float  # fraction whose right class is among the 5 best-scored (1.0 with <= 5 classes)
    k: int  # neighbours actually used (k clamped to the bank size)


def knn_scores(
    train_emb: Any,
    train_labels: Any,
    test_emb: Any,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    query_chunk: int = 1024,
    bank_chunk: int = 65536,
) -> Tensor:
    """Class scores ``(M, C)`` of each query: the sum of ``exp(cos / temperature)`` over its k nearest neighbours.

    Wu, Xiong, Yu and Lin, "Unsupervised Feature Learning via Non-Parametric Instance Discrimination", CVPR 2018
    (arXiv 1805.01978), the convention of InstDisc, MoCo and DINO: L2-normalised embeddings, the k train embeddings
    with the highest cosine similarity vote for their class with weight ``exp(sim / temperature)``.

    Queries are processed ``query_chunk`` at a time and the bank ``bank_chunk`` rows at a time, keeping a running
    top-k, so memory is ``O(query_chunk * (bank_chunk + k))`` whatever the bank size. Neighbours with equal
    similarity are taken in ``torch.topk`` order (lower bank index first in practice).

    Args:
        train_emb: ``(N, D)`` bank embeddings.
        train_labels: ``(N,)`` their class ids.
        test_emb: ``(M, D)`` query embeddings.
        k: neighbours per query (clamped to N).
        temperature: vote temperature.
        num_classes: C; default ``max label + 1``.
        query_chunk: queries per chunk.
        bank_chunk: bank rows per chunk.

    Returns:
        ``(M, C)`` float32 scores.
    """
    bank = as_embeddings("train_emb", train_emb)
    labels = as_labels("train_labels", train_labels, bank.shape[0], "train_emb")
    queries = as_embeddings("test_emb", test_emb)
    same_dim("train_emb", bank, "test_emb", queries)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    classes = int(labels.max()) + 1 if num_classes is None else num_classes
    k = min(k, bank.shape[0])
    bank = F.normalize(bank, dim=1)  # (N, D)
    out = []
    for q0 in range(0, queries.shape[0], query_chunk):
        q = F.normalize(queries[q0 : q0 + query_chunk], dim=1)  # (m, D)
        best_sim = torch.full((q.shape[0], 0), -2.0)
        best_idx = torch.zeros((q.shape[0], 0), dtype=torch.long)
        for b0 in range(0, bank.shape[0], bank_chunk):
            sim = q @ bank[b0 : b0 + bank_chunk].T  # (m, n)
            top_sim, top_idx = sim.topk(min(k, sim.shape[1]), dim=1)  # (m, k')
            best_sim = torch.cat([best_sim, top_sim], dim=1)
            best_idx = torch.cat([best_idx, top_idx + b0], dim=1)
            if best_sim.shape[1] > k:
                best_sim, keep = best_sim.topk(k, dim=1)  # (m, k)
                best_idx = best_idx.gather(1, keep)
        weights = (best_sim / temperature).exp()  # (m, k)
        scores = torch.zeros(q.shape[0], classes).scatter_add_(1, labels[best_idx], weights)  # (m, C)
        out.append(scores)
    return torch.cat(out)


def knn_accuracy(
    train_emb: Any,
    train_labels: Any,
    test_emb: Any,
    test_labels: Any,
    k: int = 200,
    temperature: float = 0.1,
    query_chunk: int = 1024,
    bank_chunk: int = 65536,
) -> KNNResult:
    """Top-1 and top-5 accuracy of the weighted cosine kNN classifier (see :func:`knn_scores`)."""
    bank = as_embeddings("train_emb", train_emb)
    bank_labels = as_labels("train_labels", train_labels, bank.shape[0], "train_emb")
    queries = as_embeddings("test_emb", test_emb)
    truth = as_labels("test_labels", test_labels, queries.shape[0], "test_emb")
    classes = int(max(int(bank_labels.max()), int(truth.max()))) + 1
    scores = knn_scores(bank, bank_labels, queries, k, temperature, classes, query_chunk, bank_chunk)
    top1 = (scores.argmax(dim=1) == truth).float().mean()
    top5 = (scores.topk(min(5, classes), dim=1).indices == truth[:, None]).any(dim=1).float().mean()
    return KNNResult(float(top1), float(top5), min(k, len(bank_labels)))
