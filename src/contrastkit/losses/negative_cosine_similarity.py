"""Negative cosine similarity, the prediction loss of SimSiam and BYOL."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit.losses.similarity import normalize
from contrastkit.losses.validation import check_embeddings, check_finite, check_same


class NegativeCosineSimilarity(nn.Module):
    """Minus the mean cosine similarity between predictions ``p`` and targets ``z``.

    Chen & He 2021, "Exploring Simple Siamese Representation Learning" (SimSiam, arXiv 2011.10566), eq. 1;
    Grill et al. 2020, "Bootstrap Your Own Latent" (BYOL, arXiv 2006.07733), whose normalised MSE
    ``2 - 2 cos(p, z)`` has the same gradient up to a factor 2.

    The loss does **not** detach ``z``: the stop-gradient is part of the method, not of the loss. Pass
    ``z.detach()`` (SimSiam) or the target network's output (BYOL), and symmetrise yourself, e.g.
    ``0.5 * (loss(p1, z2.detach()) + loss(p2, z1.detach()))``.

    Computed in float32 whatever the input dtype or autocast state. A zero vector has similarity 0 to
    everything (norm floored at 1e-12) rather than NaN.

    Args:
        check_finite: refuse NaN/inf inputs (one extra pass; set False for speed).
    """

    def __init__(self, check_finite: bool = True) -> None:
        super().__init__()
        self.check_finite = check_finite

    def forward(self, p: Tensor, z: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            p: ``(N, D)`` predictions (output of the predictor head).
            z: ``(N, D)`` targets, row i paired with row i of ``p``.

        Returns:
            Scalar float32 loss in ``[-1, 1]``.
        """
        check_embeddings("p", p)
        check_embeddings("z", z)
        check_same("p", p, "z", z)
        if p.shape[0] < 1:
            raise ValueError(f"p needs at least 1 sample, got shape {tuple(p.shape)}")
        if self.check_finite:
            check_finite("p", p)
            check_finite("z", z)
        with torch.autocast(device_type=p.device.type, enabled=False):
            cos = (normalize(p) * normalize(z)).sum(dim=-1)  # (N,) float32
            return -cos.mean()
