"""CPC: a causal context predicts future encodings of the same sequence, InfoNCE against the batch's other frames."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from contrastkit.backbones.sequence_context import POOLINGS, SequenceContextEncoder
from contrastkit.losses import CPCLoss
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method


@register_method
class CPC(Method):
    """Contrastive Predictive Coding for 1-D sequences (van den Oord, Li and Vinyals 2018, arXiv 1807.03748).

    The backbone ``g_enc`` (e.g. :class:`~contrastkit.backbones.sequence_cnn.SequenceCNN`, registered as
    ``"sequence_cnn"``) maps a signal ``(B, C, L)`` to frames ``z_t`` ``(B, T, D)``; a GRU ``g_ar`` summarises
    ``z_{<=t}`` into a context ``c_t`` ``(B, T, context_dim)``; one linear map per step, ``W_k c_t`` for
    ``k = 1..K``, predicts ``z_{t+k}``. :class:`~contrastkit.losses.CPCLoss` scores each prediction against all
    ``B * T`` frames of the batch (the other time steps of the same sequence and every step of the other
    sequences), as in the paper's audio experiments.

    Args:
        backbone: the frame encoder; must have ``feature_dim`` and ``forward_sequence(x) -> (B, T, feature_dim)``.
        context_dim: GRU hidden size, the size of ``c_t`` and of :meth:`embed` (256 in the paper's audio model).
        prediction_steps: ``K``, how many frames ahead are predicted (12 in the paper); sequences must encode to
            more than ``K`` frames.
        gru_layers: stacked GRU layers (1 in the paper).
        temperature: scores are divided by it (the paper uses plain dot products: 1.0).
        normalize: cosine instead of dot-product scores (not in the paper).
        pooling: how :meth:`embed` turns the contexts into one vector per sequence: ``"mean"`` over time (default:
            it averages out the noise of any single step and weighs the whole sequence equally) or ``"last"``
            (``c_T``, the paper's summary of the whole past, which leans on the most recent frames).
    """

    default_views = None  # no image views
    task = "sequences"  # 1-D signals (B, C, L), the batch itself the only view
    takes_views = False

    num_views = 1

    def __init__(
        self,
        backbone: nn.Module,
        context_dim: int = 256,
        prediction_steps: int = 12,
        gru_layers: int = 1,
        temperature: float = 1.0,
        normalize: bool = False,
        pooling: str = "mean",
    ) -> None:
        super().__init__(backbone)
        if not callable(getattr(backbone, "forward_sequence", None)):
            raise TypeError(
                f"CPC needs per-frame encodings: backbone {type(backbone).__name__} has no "
                "forward_sequence(x) -> (B, T, D); use contrastkit.backbones.sequence_cnn.SequenceCNN "
                "(create_backbone('sequence_cnn', in_chans=...)) or add that method to your own encoder"
            )
        if context_dim < 1 or prediction_steps < 1 or gru_layers < 1:
            raise ValueError(
                f"context_dim, prediction_steps and gru_layers must be >= 1, got {context_dim}, "
                f"{prediction_steps}, {gru_layers}"
            )
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        frame_dim = int(backbone.feature_dim)
        self.context_dim = context_dim
        self.prediction_steps = prediction_steps
        self.pooling = pooling
        self.gru = nn.GRU(frame_dim, context_dim, num_layers=gru_layers, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(context_dim, frame_dim, bias=False) for _ in range(prediction_steps))
        self.criterion = CPCLoss(temperature=temperature, normalize=normalize)

    def export_module(self) -> tuple[nn.Module, dict]:
        """The frame encoder and the GRU, pooled (:class:`SequenceContextEncoder`, what :meth:`embed` computes),
        ``kind: sequence``."""
        gru = self.gru
        return SequenceContextEncoder(self.backbone, gru, self.pooling), {
            "kind": "sequence",
            "context_dim": gru.hidden_size,
            "gru_layers": gru.num_layers,
            "pooling": self.pooling,
        }

    @property
    def feature_dim(self) -> int:
        """Size of :meth:`embed`'s output: the GRU context size."""
        return self.context_dim

    def encode(self, x: Tensor) -> Tensor:
        """Frames ``z``: ``(B, C, L)`` -> ``(B, T, D)``."""
        if x.dim() != 3:
            raise ValueError(f"CPC takes sequences (B, C, L), got shape {tuple(x.shape)}")
        return self.backbone.forward_sequence(x)  # (B, T, D)

    def contexts(self, x: Tensor) -> Tensor:
        """Causal contexts ``c_t`` (each a function of ``z_1..z_t`` only): ``(B, C, L)`` -> ``(B, T, context_dim)``."""
        return self.gru(self.encode(x))[0]  # (B, T, H)

    def predict(self, c: Tensor) -> Tensor:
        """``W_k c_t``, ``k = 1..K``: ``(B, T, H)`` -> ``(B, K, T, D)``; ``[:, k-1, t]`` predicts ``z_{t+k}``."""
        return torch.stack([w(c) for w in self.predictors], dim=1)  # (B, K, T, D)

    def forward(self, views: Sequence[Tensor], labels: Tensor | None = None) -> MethodOutput:
        self.check_views(views)
        z = self.encode(views[0])  # (B, T, D)
        if z.shape[1] <= self.prediction_steps:
            raise ValueError(
                f"the sequences encode to T={z.shape[1]} frames, but CPC predicts prediction_steps="
                f"{self.prediction_steps} ahead and needs T > {self.prediction_steps}: use longer sequences, "
                "less downsampling in the encoder or fewer prediction steps"
            )
        c, _ = self.gru(z)  # (B, T, H)
        predictions = self.predict(c)  # (B, K, T, D)
        loss = self.criterion(predictions, z)
        accuracy = self.criterion.accuracy(predictions.detach(), z.detach())  # (K,)
        metrics = {"loss": loss.detach(), "accuracy": accuracy.mean(), "accuracy_k1": accuracy[0]}
        return MethodOutput(loss, metrics)

    def embed(self, x: Tensor) -> Tensor:
        """One vector per sequence from the contexts, ``(B, C, L)`` -> ``(B, context_dim)`` (see ``pooling``)."""
        return SequenceContextEncoder(self.backbone, self.gru, self.pooling)(x)  # (B, H)
