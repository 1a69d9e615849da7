"""Float64 reference formulas, written out loop by loop, independent of contrastkit's code."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def unit64(x: Tensor) -> Tensor:
    """Rows of x as float64 unit vectors (zero rows stay zero)."""
    x = x.double()
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def nt_xent(
    z_a: Tensor,
    z_b: Tensor,
    t: float,
    labels: Tensor | None = None,
    tau_plus: float = 0.0,
    beta: float = 0.0,
    decoupled: bool = False,
) -> Tensor:
    """NT-Xent and its DCL / HCL / decoupled variants, anchor by anchor, from the papers' formulas."""
    z = torch.cat([unit64(z_a), unit64(z_b)])
    n2 = z.shape[0]
    n = n2 // 2
    lab = None if labels is None else torch.cat([labels, labels])
    losses = []
    for i in range(n2):
        p = (i + n) % n2
        pos = torch.exp(z[i] @ z[p] / t)
        negs = [j for j in range(n2) if j not in (i, p) and (lab is None or lab[j] != lab[i])]
        if not negs:
            continue
        neg = torch.stack([torch.exp(z[i] @ z[j] / t) for j in negs])
        m = len(negs)
        if tau_plus > 0 or beta > 0:
            imp = torch.stack([torch.exp(beta * z[i] @ z[j] / t) for j in negs])
            reweighted = (imp * neg).sum() / imp.mean()
            ng = (-tau_plus * m * pos + reweighted) / (1 - tau_plus)
            ng = torch.clamp(ng, min=m * math.exp(-1 / t))
        else:
            ng = neg.sum()
        denom = ng if decoupled else pos + ng
        losses.append(-torch.log(pos / denom))
    return torch.stack(losses).mean()


def moco(q: Tensor, k: Tensor, bank: Tensor, t: float) -> Tensor:
    """MoCo InfoNCE: cross-entropy with the key at index 0 and the bank rows after it."""
    q, k, bank = unit64(q), unit64(k), unit64(bank)
    losses = []
    for i in range(q.shape[0]):
        logits = torch.cat([(q[i] @ k[i])[None], bank @ q[i]]) / t
        losses.append(-(logits[0] - torch.logsumexp(logits, 0)))
    return torch.stack(losses).mean()


def sup_con(features: Tensor, labels: Tensor, t: float) -> Tensor:
    """Khosla et al. L_out over (N, V, D) features, anchor by anchor."""
    n, v, _ = features.shape
    z = unit64(features).reshape(n * v, -1)
    lab = labels.repeat_interleave(v)
    losses = []
    for i in range(n * v):
        others = [a for a in range(n * v) if a != i]
        log_denom = torch.logsumexp(torch.stack([z[i] @ z[a] / t for a in others]), 0)
        pos = [p for p in others if lab[p] == lab[i]]
        if pos:
            losses.append(-torch.stack([z[i] @ z[p] / t - log_denom for p in pos]).mean())
    return torch.stack(losses).mean()


def clip(img: Tensor, txt: Tensor, scale: float) -> Tensor:
    """Mean of image->text and text->image cross-entropies over scale * cosine logits."""
    i, t = unit64(img), unit64(txt)
    logits = scale * i @ t.T
    n = logits.shape[0]
    i2t = sum(-(logits[r, r] - torch.logsumexp(logits[r], 0)) for r in range(n)) / n
    t2i = sum(-(logits[c, c] - torch.logsumexp(logits[:, c], 0)) for c in range(n)) / n
    return (i2t + t2i) / 2
