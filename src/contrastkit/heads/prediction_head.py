"""Predictor MLP of BYOL and SimSiam."""

from __future__ import annotations

from torch import Tensor, nn

from contrastkit.heads.projection_head import build_mlp


class PredictionHead(nn.Module):
    """Predictor ``Linear -> BatchNorm1d -> ReLU -> Linear`` applied on top of the online projection.

    Grill et al. 2020, "Bootstrap Your Own Latent" (BYOL, arXiv 2006.07733): hidden 4096, output 256,
    i.e. ``PredictionHead(256, 4096, 256)``. Chen & He 2021, "Exploring Simple Siamese Representation
    Learning" (SimSiam, arXiv 2011.10566): a bottleneck, ``PredictionHead(2048, 512, 2048)``; its output fc has
    neither BN nor ReLU. The first Linear has no bias since a BatchNorm follows it.

    Args:
        input_dim: dimension of the projection fed in.
        hidden_dim: width of the hidden layer.
        output_dim: dimension of the prediction (equal to the target projection's dimension).
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int) -> None:
        super().__init__()
        self.layers = build_mlp(
            [
                (input_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
                (hidden_dim, output_dim, None, None),
            ]
        )

    def forward(self, x: Tensor) -> Tensor:
        """Predict from ``x`` of shape ``(B, input_dim)``, returning ``(B, output_dim)``."""
        return self.layers(x)  # (B, output_dim)
