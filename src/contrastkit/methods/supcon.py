"""SupCon: two views, a projection MLP and the supervised contrastive loss over the batch's labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit.losses import SupConLoss
from contrastkit.methods.method import MethodOutput
from contrastkit.methods.registry import register_method
from contrastkit.methods.simclr import SimCLR


@register_method
class SupCon(SimCLR):
    """Supervised Contrastive Learning (Khosla et al., NeurIPS 2020, arXiv 2004.11362).

    SimCLR's network with another loss and batching: both views go through the backbone in one batch of ``2B``,
    then SimCLR's projection MLP (Linear-ReLU-Linear, 2048 -> 128, no BN, as in the reference code); the L_out loss
    (:class:`~contrastkit.losses.SupConLoss`) pulls together the unit-normalised projections of all views of the
    same class and pushes apart the others, over the global batch when gathered across processes (labels are
    gathered with the features). Needs labelled data: ``forward`` refuses ``labels=None``.

    Args:
        backbone: the encoder, with ``feature_dim``.
        projection_dim: output size of the projection head (128 in the paper).
        hidden_dim: hidden width of the projection head (2048 in the paper).
        num_layers: Linear layers in the projection head (2 in the paper).
        temperature: SupCon temperature (0.1 in the paper).
        gather_distributed: contrast against the views and labels of all processes.
        batch_norm: BatchNorm in the projection head (off, as the paper's reference code).

    Supports gradient caching (``embed_batch``: one ``(B, projection_dim)`` projection per view).
    """

    uses_labels = True
    supports_grad_cache = True

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
        super().__init__(backbone, projection_dim, hidden_dim, num_layers, temperature, gather_distributed, batch_norm)
        self.criterion = SupConLoss(temperature=temperature, gather_distributed=gather_distributed)  # SimCLR's head

    @staticmethod
    def _check_labels(labels: Any) -> None:
        if labels is None:
            raise ValueError(
                "SupCon is supervised: it needs labelled data, forward(views, labels) with the batch's class labels "
                "(the trainer passes them for methods with uses_labels=True); got labels=None"
            )

    def embed_batch(self, views: Sequence[Tensor], labels: Any = None) -> list[Tensor]:
        self.check_views(views)
        self._check_labels(labels)
        z = self.projection_head(self.backbone(torch.cat(list(views))))  # (V B, projection_dim)
        return list(z.chunk(len(views)))  # (B, projection_dim) per view

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Any = None) -> MethodOutput:
        self._check_labels(labels)
        features = torch.stack(list(embeddings), dim=1)  # (B, V, projection_dim), normalised by the loss
        loss = self.criterion(features, labels)
        return MethodOutput(loss, {"loss": loss.detach()})
