"""BYOL: an online network predicts the projection of a slowly moving (EMA) target network, no negatives."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from contrastkit.heads import PredictionHead, ProjectionHead, cosine_momentum, deactivate_requires_grad, update_momentum
from contrastkit.losses import NegativeCosineSimilarity
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method


@register_method
class BYOL(Method):
    """BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, arXiv 2006.07733).

    The online network (backbone, projection MLP 4096 -> 256 and predictor MLP 4096 -> 256, each
    Linear-BN-ReLU-Linear) predicts the target network's projection of the other view. The target network is an
    exponential moving average of the online backbone and projection head, never trained by gradient:
    ``xi <- m * xi + (1 - m) * theta`` after every optimiser step, with ``m`` rising from ``momentum_start`` to
    ``momentum_end`` on a cosine over the run (``1 - (1 - 0.996) * (cos(pi * k / K) + 1) / 2``).

    The loss is the paper's normalised MSE ``2 - 2 cos(p, z')``, averaged over the batch and summed over both
    directions (view 1 predicts view 2 and vice versa), as the reference code: its range is ``[0, 8]`` and its
    gradient is 4 times that of lightly's ``0.5 * (negcos(p1, z2) + negcos(p2, z1))``, which matters for the
    paper's LARS learning rate and weight decay. Each view goes through the networks on its own (BatchNorm
    statistics per view), as in the reference code.

    Args:
        backbone: the encoder, with ``feature_dim``.
        projection_dim: output size of the projection and prediction heads (256 in the paper).
        hidden_dim: hidden width of the projection head (4096 in the paper).
        prediction_hidden_dim: hidden width of the predictor (4096 in the paper).
        momentum_start: target EMA momentum at step 0 (0.996 in the paper).
        momentum_end: target EMA momentum at the last step (1.0 in the paper).
    """

    default_views = "byol"  # the views of its paper

    def __init__(
        self,
        backbone: nn.Module,
        projection_dim: int = 256,
        hidden_dim: int = 4096,
        prediction_hidden_dim: int = 4096,
        momentum_start: float = 0.996,
        momentum_end: float = 1.0,
    ) -> None:
        super().__init__(backbone)
        for name, value in (("momentum_start", momentum_start), ("momentum_end", momentum_end)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.momentum_start = float(momentum_start)
        self.momentum_end = float(momentum_end)
        self.projection_head = ProjectionHead(self.feature_dim, hidden_dim, projection_dim)
        self.prediction_head = PredictionHead(projection_dim, prediction_hidden_dim, projection_dim)
        self.target_backbone = deactivate_requires_grad(copy.deepcopy(self.backbone))
        self.target_projection_head = deactivate_requires_grad(copy.deepcopy(self.projection_head))
        self.criterion = NegativeCosineSimilarity()

    def momentum(self) -> float:
        """The EMA momentum for the current step (``self.progress``), used by :meth:`after_optimizer_step`."""
        step, total = self.progress.step, self.progress.total_steps
        return cosine_momentum(step, total, self.momentum_start, self.momentum_end)

    def forward(self, views: Sequence[Tensor], labels: Tensor | None = None) -> MethodOutput:
        self.check_views(views)
        x1, x2 = views
        p1 = self.prediction_head(self.projection_head(self.backbone(x1)))  # (B, projection_dim)
        p2 = self.prediction_head(self.projection_head(self.backbone(x2)))  # (B, projection_dim)
        with torch.no_grad():
            t1 = self.target_projection_head(self.target_backbone(x1))  # (B, projection_dim)
            t2 = self.target_projection_head(self.target_backbone(x2))  # (B, projection_dim)
        # 2 - 2 cos = 2 + 2 * negcos, per direction
        loss = (2.0 + 2.0 * self.criterion(p1, t2)) + (2.0 + 2.0 * self.criterion(p2, t1))
        metrics = {"loss": loss.detach(), "momentum": loss.new_tensor(self.momentum())}  # on the loss's device
        return MethodOutput(loss, metrics)

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        m = self.momentum()
        update_momentum(self.backbone, self.target_backbone, m)
        update_momentum(self.projection_head, self.target_projection_head, m)
