"""Barlow Twins: make the cross-correlation of two views' embeddings close to the identity."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses import BarlowTwinsLoss
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method


@register_method
class BarlowTwins(Method):
    """Barlow Twins (Zbontar, Jing, Misra, LeCun and Deny, ICML 2021, arXiv 2103.03230).

    Both views go through the backbone and a projector of three Linear layers (8192-8192-8192, BN-ReLU after the
    first two, none on the output); :class:`~contrastkit.losses.BarlowTwinsLoss` standardises each dimension over
    the batch and pushes the cross-correlation matrix to the identity: ``sum_i (1 - c_ii)^2 + lambda_ *
    sum_{i != j} c_ij^2``. Each view goes through the network on its own (BatchNorm statistics per view), as in
    the reference code (facebookresearch/barlowtwins).

    Args:
        backbone: the encoder, with ``feature_dim``.
        projection_dim: output size of the projector (8192 in the paper).
        hidden_dim: hidden width of the projector (8192 in the paper).
        num_layers: Linear layers in the projector (3 in the paper).
        lambda_: weight of the redundancy-reduction (off-diagonal) term (5e-3 in the paper).
        gather_distributed: compute the batch statistics and the cross-correlation over the global batch of all
            processes, as the reference code.
    """

    default_views = "byol"  # the views of its paper

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int = 8192,
        hidden_dim: int = 8192,
        num_layers: int = 3,
        lambda_: float = 5e-3,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone)
        self.projection_head = ProjectionHead(self.feature_dim, hidden_dim, projection_dim, num_layers=num_layers)
        self.criterion = BarlowTwinsLoss(lambda_=lambda_, gather_distributed=gather_distributed)

    def forward(self, views: Sequence[Tensor], labels: Tensor | None = None) -> MethodOutput:
        self.check_views(views)
        x1, x2 = views
        z1 = self.projection_head(self.backbone(x1))  # (B, projection_dim)
        z2 = self.projection_head(self.backbone(x2))  # (B, projection_dim)
        loss = self.criterion(z1, z2)
        return MethodOutput(loss, {"loss": loss.detach()})
