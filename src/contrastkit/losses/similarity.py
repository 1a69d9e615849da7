"""Cosine geometry shared by the losses: unit-normalised float32 embeddings."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

# Norm floor: a zero vector normalises to zero (similarity 0 to everything) instead of NaN.
NORM_EPS = 1e-12


def normalize(x: Tensor) -> Tensor:
    """L2-normalise the last dimension in float32 (whatever the input dtype or autocast state)."""
    return F.normalize(x.float(), dim=-1, eps=NORM_EPS)
