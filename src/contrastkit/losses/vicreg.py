"""VICReg: variance-invariance-covariance regularisation of two views."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.losses.barlow_twins import off_diagonal
from contrastkit.losses.distributed import gather_with_grad
from contrastkit.losses.validation import check_pair


def _variance_term(z: Tensor, eps: float) -> Tensor:
    """Hinge on the per-dimension standard deviation: mean over dims of relu(1 - sqrt(var + eps))."""
    std = torch.sqrt(z.var(dim=0) + eps)  # (D,) unbiased variance
    return F.relu(1.0 - std).mean()


def _covariance_term(z: Tensor) -> Tensor:
    """Sum of squared off-diagonal covariances divided by the dimension."""
    n, d = z.shape
    z = z - z.mean(dim=0)  # (N, D)
    cov = z.T @ z / (n - 1)  # (D, D) unbiased
    return off_diagonal(cov).pow(2).sum() / d


class VICRegLoss(nn.Module):
    """VICReg loss.

    Bardes, Ponce & LeCun 2022, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
    Learning" (ICLR 2022, arXiv 2105.04906), as in the authors' reference code (facebookresearch/vicreg) and
    lightly's ``VICRegLoss``:

        loss = lambda_ * mse(z_a, z_b)
             + mu * (mean_d relu(1 - sqrt(var_a + eps)) / 2 + mean_d relu(1 - sqrt(var_b + eps)) / 2)
             + nu * (sum_{i != j} cov_a[i, j]^2 / D + sum_{i != j} cov_b[i, j]^2 / D)

    with unbiased (``N - 1``) variance and covariance. Computed in float32 even under autocast.

    Args:
        lambda_: weight of the invariance (MSE) term.
        mu: weight of the variance term.
        nu: weight of the covariance term.
        eps: added to the variance before the square root.
        gather_distributed: compute the variance and covariance terms over the batches of all
            ``torch.distributed`` processes (gathered with gradients); the invariance term stays local, as in
            the reference code and lightly.
        check_finite: refuse NaN/inf inputs (one extra pass; set False for speed).
    """

    def __init__(
        self,
        lambda_: float = 25.0,
        mu: float = 25.0,
        nu: float = 1.0,
        eps: float = 1e-4,
        gather_distributed: bool = False,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("lambda_", lambda_), ("mu", mu), ("nu", nu), ("eps", eps)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self.lambda_, self.mu, self.nu, self.eps = float(lambda_), float(mu), float(nu), float(eps)
        self.gather_distributed = gather_distributed
        self.check_finite = check_finite

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            z_a: ``(N, D)`` expander output for the first view.
            z_b: ``(N, D)`` expander output for the second view, row i the same image as row i of ``z_a``.

        Returns:
            Scalar float32 loss.
        """
        check_pair("z_a", z_a, "z_b", z_b, finite=self.check_finite)
        with torch.autocast(device_type=z_a.device.type, enabled=False):
            a_local, b_local = z_a.float(), z_b.float()  # (N, D)
            a, b = a_local, b_local
            if self.gather_distributed:
                a, _ = gather_with_grad(a_local)  # (N_total, D)
                b, _ = gather_with_grad(b_local)  # (N_total, D)
            if a.shape[0] < 2:
                raise ValueError(
                    f"z_a needs at least 2 samples for the variance/covariance, got shape {tuple(z_a.shape)}"
                    + (f" ({a.shape[0]} over all processes)" if self.gather_distributed else "")
                )
            invariance = F.mse_loss(a_local, b_local)  # local batch
            variance = 0.5 * (_variance_term(a, self.eps) + _variance_term(b, self.eps))
            covariance = _covariance_term(a) + _covariance_term(b)
            return self.lambda_ * invariance + self.mu * variance + self.nu * covariance
