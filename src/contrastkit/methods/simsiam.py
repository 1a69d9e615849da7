"""SimSiam: a Siamese network with a predictor and a stop-gradient, no negatives and no momentum encoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.heads import PredictionHead, ProjectionHead
from contrastkit.losses import NegativeCosineSimilarity
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method


@register_method
class SimSiam(Method):
    """SimSiam (Chen and He, "Exploring Simple Siamese Representation Learning", CVPR 2021, arXiv 2011.10566).

    Both views go through the same backbone and projection MLP (3 layers of 2048, BatchNorm on every layer
    "including its output fc", no ReLU on the output; the output BatchNorm has no affine parameters, as in the
    reference code facebookresearch/simsiam), then a bottleneck predictor (2048 -> 512 -> 2048, BN-ReLU on the
    hidden layer only). The loss is the symmetric negative cosine with a stop-gradient on the projections
    (eq. 4): ``0.5 * D(p1, stopgrad(z2)) + 0.5 * D(p2, stopgrad(z1))``, in ``[-1, 1]``. Each view goes through
    the network on its own (BatchNorm statistics per view), as in the reference code.

    Metrics: ``loss`` and ``output_std``, the mean per-dimension standard deviation of the L2-normalised
    projections (the paper's collapse indicator, Fig. 2: 0 when collapsed, about ``1 / sqrt(projection_dim)``
    when spread out).

    Args:
        backbone: the encoder, with ``feature_dim``.
        projection_dim: output size of the projection head and of the predictor (2048 in the paper).
        hidden_dim: hidden width of the projection head (2048 in the paper: the ResNet-50 feature size).
        prediction_hidden_dim: bottleneck width of the predictor (512 in the paper).
        num_layers: Linear layers in the projection head (3 for ImageNet; the paper's CIFAR-10 setting uses 2).
    """

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int = 2048,
        hidden_dim: int = 2048,
        prediction_hidden_dim: int = 512,
        num_layers: int = 3,
    ) -> None:
        super().__init__(backbone)
        self.projection_head = ProjectionHead(
            self.feature_dim, hidden_dim, projection_dim, num_layers=num_layers, last_batch_norm=True, last_affine=False
        )
        self.prediction_head = PredictionHead(projection_dim, prediction_hidden_dim, projection_dim)
        self.criterion = NegativeCosineSimilarity()

    def forward(self, views: Sequence[Tensor], labels: Tensor | None = None) -> MethodOutput:
        self.check_views(views)
        x1, x2 = views
        z1 = self.projection_head(self.backbone(x1))  # (B, projection_dim)
        z2 = self.projection_head(self.backbone(x2))  # (B, projection_dim)
        p1 = self.prediction_head(z1)  # (B, projection_dim)
        p2 = self.prediction_head(z2)  # (B, projection_dim)
        loss = 0.5 * (self.criterion(p1, z2.detach()) + self.criterion(p2, z1.detach()))
        with torch.no_grad():
            output_std = F.normalize(z1.float(), dim=1).std(dim=0).mean()
        return MethodOutput(loss, {"loss": loss.detach(), "output_std": output_std})
