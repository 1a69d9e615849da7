"""Projection, prediction and DINO heads plus momentum-encoder utilities, each a plain ``torch.nn`` building block.

Importing this package does not import Lightning or any training code.
"""

from contrastkit.heads.dino_head import DINOHead, cancel_last_layer_gradients
from contrastkit.heads.momentum import cosine_momentum, deactivate_requires_grad, update_momentum
from contrastkit.heads.prediction_head import PredictionHead
from contrastkit.heads.projection_head import ProjectionHead, build_mlp

__all__ = [
    "DINOHead",
    "PredictionHead",
    "ProjectionHead",
    "build_mlp",
    "cancel_last_layer_gradients",
    "cosine_momentum",
    "deactivate_requires_grad",
    "update_momentum",
]
