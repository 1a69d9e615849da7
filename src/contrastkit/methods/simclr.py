"""SimCLR: two views, a projection MLP and NT-Xent over the other images of the (global) batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from contrastkit.heads import ProjectionHead
from contrastkit.losses import InfoNCELoss
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method


@register_method
class SimCLR(Method):
    """SimCLR (Chen, Kornblith, Norouzi and Hinton, ICML 2020, arXiv 2002.05709).

    Each view goes through the backbone and a projection MLP (Linear-BN-ReLU-Linear, 2048 -> 128) as its own batch
    (BatchNorm statistics per view, as in lightly and the BYOL-family reference code; on CPUs two passes of B are
    also ~35% faster than one of 2B, measured 2026-11-23); the NT-Xent loss pulls the two views of an image together
    against the other ``2B - 2`` (``2 * global batch - 2`` when gathered across processes).

    Args:
        backbone: the encoder, with ``feature_dim``.
        projection_dim: output size of the projection head (128 in the paper).
        hidden_dim: hidden width of the projection head (2048 in the paper).
        num_layers: Linear layers in the projection head (2 in SimCLR v1, 3 in v2).
        temperature: NT-Xent temperature (0.1 for ImageNet at batch 4096; 0.5 in the CIFAR-10 setting).
        gather_distributed: gather embeddings from all processes so each sees the global batch's negatives.
        batch_norm: BatchNorm in the projection head (as in the paper); off for per-sample heads, e.g. on CPU
            processes, where BatchNorm statistics cannot be synchronised.

    Supports gradient caching (``embed_batch``: one ``(B, projection_dim)`` projection per view).
    """

    supports_grad_cache = True

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int = 128,
        hidden_dim: int = 2048,
        num_layers: int = 2,
        temperature: float = 0.1,
        gather_distributed: bool = True,
        batch_norm: bool = True,
    ) -> None:
        super().__init__(backbone)
        self.projection_head = ProjectionHead(
            self.feature_dim, hidden_dim, projection_dim, num_layers=num_layers, batch_norm=batch_norm
        )
        self.criterion = InfoNCELoss(temperature=temperature, gather_distributed=gather_distributed)

    def embed_batch(self, views: Sequence[Tensor], labels: Any = None) -> list[Tensor]:
        self.check_views(views)
        return [self.projection_head(self.backbone(v)) for v in views]  # (B, projection_dim) per view

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Any = None) -> MethodOutput:
        z_a, z_b = embeddings
        loss = self.criterion(z_a, z_b)
        return MethodOutput(loss, {"loss": loss.detach()})
