"""Barlow Twins: redundancy reduction through the cross-correlation matrix of two views."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit.losses.distributed import gather_with_grad
from contrastkit.losses.validation import check_pair


def off_diagonal(m: Tensor) -> Tensor:
    """Off-diagonal entries of a square ``(D, D)`` matrix, flattened ``(D * (D - 1),)`` (reference code)."""
    d = m.shape[0]
    return m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()  # (D * (D - 1),)


def _standardise(z: Tensor, eps: float) -> Tensor:
    """Per-dimension standardisation over the batch, as ``BatchNorm1d(affine=False)`` in training mode."""
    mean = z.mean(dim=0, keepdim=True)  # (1, D)
    var = z.var(dim=0, unbiased=False, keepdim=True)  # (1, D) biased, as BatchNorm
    return (z - mean) / torch.sqrt(var + eps)  # (N, D)


class BarlowTwinsLoss(nn.Module):
    """Barlow Twins loss.

    Zbontar, Jing, Misra, LeCun & Deny 2021, "Barlow Twins: Self-Supervised Learning via Redundancy Reduction"
    (arXiv 2103.03230), as in the authors' reference code (facebookresearch/barlowtwins): each embedding
    dimension is standardised over the batch like ``BatchNorm1d(affine=False)`` in training mode (biased
    variance plus ``eps``), the cross-correlation is ``c = z_a^T z_b / N`` and

        loss = sum_i (1 - c_ii)^2 + lambda_ * sum_{i != j} c_ij^2.

    Computed in float32 even under autocast. Note that lightly's ``BarlowTwinsLoss`` divides by the unbiased
    standard deviation instead, so its values differ slightly from these.

    Args:
        lambda_: weight of the redundancy-reduction (off-diagonal) term; the paper uses 5e-3.
        gather_distributed: gather both views from all ``torch.distributed`` processes (with gradients, see
            ``contrastkit.losses.distributed``) *before* the batch statistics, so standardisation and ``c``
            are over the global batch, as the reference code's SyncBatchNorm and ``all_reduce(c)``. Every
            process then computes the same global loss; DDP's gradient averaging gives the exact gradient.
        eps: added to the variance before the square root, as BatchNorm's ``eps`` (> 0).
        check_finite: refuse NaN/inf inputs (one extra pass; set False for speed).
    """

    def __init__(
        self,
        lambda_: float = 5e-3,
        gather_distributed: bool = False,
        eps: float = 1e-5,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        if not lambda_ >= 0:
            raise ValueError(f"lambda_ must be >= 0, got {lambda_!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0 (as BatchNorm's), got {eps!r}")
        self.lambda_ = float(lambda_)
        self.gather_distributed = gather_distributed
        self.eps = float(eps)
        self.check_finite = check_finite

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            z_a: ``(N, D)`` projector output for the first view.
            z_b: ``(N, D)`` projector output for the second view, row i the same image as row i of ``z_a``.

        Returns:
            Scalar float32 loss.
        """
        check_pair("z_a", z_a, "z_b", z_b, finite=self.check_finite)
        with torch.autocast(device_type=z_a.device.type, enabled=False):
            a, b = z_a.float(), z_b.float()  # (N, D)
            if self.gather_distributed:
                a, _ = gather_with_grad(a)  # (N_total, D)
                b, _ = gather_with_grad(b)  # (N_total, D)
            n = a.shape[0]
            if n < 2:
                raise ValueError(
                    f"z_a needs at least 2 samples for batch statistics, got shape {tuple(z_a.shape)}"
                    + (f" ({n} over all processes)" if self.gather_distributed else "")
                )
            c = _standardise(a, self.eps).T @ _standardise(b, self.eps) / n  # (D, D)
            on = (1.0 - torch.diagonal(c)).pow(2).sum()
            off = off_diagonal(c).pow(2).sum()
            return on + self.lambda_ * off
