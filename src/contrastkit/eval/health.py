"""Representation health: alignment, uniformity, effective rank and spread, and the collapse warnings they give."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from contrastkit.eval._inputs import as_embeddings

COMPLETE_COLLAPSE_RATIO = 0.1  # std ratio below this: the embeddings are (nearly) one vector
DIMENSIONAL_COLLAPSE_FRACTION = 0.05  # effective rank below this fraction of min(N, D): few directions are used


def alignment(z_a: Any, z_b: Any, alpha: float = 2.0) -> float:
    """Mean ``||f(x) - f(y)||^alpha`` over positive pairs of normalised embeddings (Wang & Isola 2020, arXiv
    2005.10242); lower is better aligned (0 when both views embed identically, at most ``2^alpha``)."""
    a, b = as_embeddings("z_a", z_a), as_embeddings("z_b", z_b)
    if a.shape != b.shape:
        raise ValueError(f"z_a {tuple(a.shape)} and z_b {tuple(b.shape)} must have the same shape (row i a pair)")
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)  # (N, D)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z: Any, t: float = 2.0, max_samples: int = 8192, seed: int = 0) -> float:
    """``log mean exp(-t ||f(x) - f(y)||^2)`` over distinct pairs of normalised embeddings (Wang & Isola 2020);
    lower is more uniform on the sphere. Above ``max_samples`` rows a fixed random subsample is used."""
    x = as_embeddings("z", z)
    if x.shape[0] < 2:
        raise ValueError(f"z needs at least 2 rows for pairs, got {x.shape[0]}")
    if x.shape[0] > max_samples:
        x = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:max_samples]]
    x = F.normalize(x, dim=1).double()  # (N, D)
    sq = torch.cdist(x, x).pow(2)  # (N, N)
    n = x.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    return float(torch.logsumexp(-t * sq[off], dim=0) - math.log(n * (n - 1)))


def rankme(z: Any, eps: float = 1e-7) -> float:
    """Effective rank ``exp(-sum p_k log p_k)``, ``p_k = sigma_k / sum(sigma) + eps`` (Garrido et al. 2023, arXiv
    2210.02885): about r for r equally strong directions, 1 for a collapsed set."""
    x = as_embeddings("z", z).double()
    s = torch.linalg.svdvals(x)  # (min(N, D),)
    p = s / s.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


@dataclass(frozen=True)
class EmbeddingStd:
    """Spread of normalised embeddings per dimension, against uniformly spread ones."""

    std: float  # mean over dimensions of the std of the L2-normalised embeddings
    expected: float  # 1 / sqrt(D): that std for embeddings spread uniformly on the sphere
    ratio: float  # std / expected: ~1 healthy, -> 0 as the embeddings collapse to one point


def embedding_std(z: Any) -> EmbeddingStd:
    """Per-dimension std of L2-normalised embeddings vs ``1/sqrt(D)`` (the collapse signal of SimSiam, Chen & He
    2021, arXiv 2011.10566, section 4.1)."""
    x = F.normalize(as_embeddings("z", z), dim=1)
    if x.shape[0] < 2:
        raise ValueError(f"z needs at least 2 rows for a std, got {x.shape[0]}")
    std = float(x.std(dim=0).mean())
    expected = 1.0 / math.sqrt(x.shape[1])
    return EmbeddingStd(std, expected, std / expected)


def collapse_warnings(z: Any) -> list[str]:
    """Human-readable warnings about collapsed embeddings (empty when healthy).

    Complete collapse: std ratio (:func:`embedding_std`) below ``COMPLETE_COLLAPSE_RATIO``. Dimensional
    collapse: effective rank (:func:`rankme`) below ``DIMENSIONAL_COLLAPSE_FRACTION`` of ``min(N, D)`` (and
    under 8).
    """
    x = as_embeddings("z", z)
    messages = []
    spread = embedding_std(x)
    if spread.ratio < COMPLETE_COLLAPSE_RATIO:
        messages.append(
            f"complete collapse: the embeddings are nearly one vector (per-dimension std {spread.std:.2e}, "
            f"{spread.ratio:.3f} of the {spread.expected:.3f} of uniformly spread ones). Usually fixed by: stronger "
            "augmentations, a lower learning rate or longer warm-up, checking the stop-gradient / predictor / "
            "momentum target (BYOL, SimSiam), BatchNorm in the projector, or a higher temperature."
        )
        return messages
    rank = rankme(x)
    limit = DIMENSIONAL_COLLAPSE_FRACTION * min(x.shape)
    if rank < min(limit, 8.0):
        messages.append(
            f"dimensional collapse: the embeddings use about {rank:.1f} of {x.shape[1]} dimensions (effective rank). "
            "Usually fixed by: a wider projector or one with BatchNorm, stronger augmentations, a lower learning "
            "rate, or a variance/covariance term (VICReg, Barlow Twins)."
        )
    return messages
