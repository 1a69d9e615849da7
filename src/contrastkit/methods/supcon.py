"""SupCon: two views, a projection MLP and the supervised contrastive loss over the batch's labels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses import SupConLoss
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method


@register_method
class SupCon(Method):
    """Supervised Contrastive Learning (Khosla et al., NeurIPS 2020, arXiv 2004.11362).

    Both views go through the backbone in one batch of ``2B``, then a projection MLP (Linear-ReLU-Linear,
    2048 -> 128, no BN as in the reference code); the L_out loss (:class:`~contrastkit.losses.SupConLoss`) pulls
    together the unit-normalised projections of all views of the same class and pushes apart the others, over the
    global batch when gathered across processes (labels are gathered with the features). Needs labelled data:
    ``forward`` refuses ``labels=None``.

    Args:
        backbone: the encoder, with ``feature_dim``.
        projection_dim: output size of the projection head (128 in the paper).
        hidden_dim: hidden width of the projection head (2048 in the paper).
        num_layers: Linear layers in the projection head (2 in the paper).
        temperature: SupCon temperature (0.1 in the paper).
        gather_distributed: contrast against the views and labels of all processes.
        batch_norm: BatchNorm in the projection head (off, as the paper's reference code).
    """

    uses_labels = True

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int = 128,
        hidden_dim: int = 2048,
        num_layers: int = 2,
        temperature: float = 0.1,
        gather_distributed: bool = True,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(backbone)
        self.projection_head = ProjectionHead(
            self.feature_dim, hidden_dim, projection_dim, num_layers=num_layers, batch_norm=batch_norm
        )
        self.criterion = SupConLoss(temperature=temperature, gather_distributed=gather_distributed)

    def forward(self, views: Sequence[Tensor], labels: Tensor | None = None) -> MethodOutput:
        self.check_views(views)
        if labels is None:
            raise ValueError(
                "SupCon is supervised: it needs labelled data, forward(views, labels) with the batch's class labels "
                "(the trainer passes them for methods with uses_labels=True); got labels=None"
            )
        z = self.projection_head(self.backbone(torch.cat(list(views))))  # (2B, projection_dim)
        features = torch.stack(z.chunk(2), dim=1)  # (B, 2, projection_dim), normalised by the loss
        loss = self.criterion(features, labels)
        return MethodOutput(loss, {"loss": loss.detach()})
