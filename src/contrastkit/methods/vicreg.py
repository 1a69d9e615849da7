"""VICReg: invariance between two views, plus variance and covariance regularisation of each view's embeddings."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses import VICRegLoss
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method


@register_method
class VICReg(Method):
    """VICReg (Bardes, Ponce and LeCun, ICLR 2022, arXiv 2105.04906).

    Both views go through the backbone and an expander of three Linear layers (8192-8192-8192, BN-ReLU after the
    first two, none on the output); :class:`~contrastkit.losses.VICRegLoss` adds the invariance (MSE between the
    views), variance (hinge on each dimension's standard deviation) and covariance (off-diagonal covariances)
    terms with weights ``lambda_``, ``mu`` and ``nu`` (25, 25, 1 in the paper). Each view goes through the
    network on its own (BatchNorm statistics per view), as in the reference code (facebookresearch/vicreg).

    Args:
        backbone: the encoder, with ``feature_dim``.
        projection_dim: output size of the expander (8192 in the paper).
        hidden_dim: hidden width of the expander (8192 in the paper).
        num_layers: Linear layers in the expander (3 in the paper).
        lambda_: weight of the invariance term.
        mu: weight of the variance term.
        nu: weight of the covariance term.
        gather_distributed: compute the variance and covariance terms over the global batch of all processes, as
            the reference code (the invariance term stays per process).
    """

    default_views = "byol"  # the views of its paper

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int = 8192,
        hidden_dim: int = 8192,
        num_layers: int = 3,
        lambda_: float = 25.0,
        mu: float = 25.0,
        nu: float = 1.0,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone)
        self.projection_head = ProjectionHead(self.feature_dim, hidden_dim, projection_dim, num_layers=num_layers)
        self.criterion = VICRegLoss(lambda_=lambda_, mu=mu, nu=nu, gather_distributed=gather_distributed)

    def forward(self, views: Sequence[Tensor], labels: Tensor | None = None) -> MethodOutput:
        self.check_views(views)
        x1, x2 = views
        z1 = self.projection_head(self.backbone(x1))  # (B, projection_dim)
        z2 = self.projection_head(self.backbone(x2))  # (B, projection_dim)
        loss = self.criterion(z1, z2)
        return MethodOutput(loss, {"loss": loss.detach()})
