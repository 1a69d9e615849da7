"""``SequenceContextEncoder``: a frame encoder and a causal GRU over its frames, pooled to one vector per sequence:
the part of CPC used downstream, exported as one encoder."""

from __future__ import annotations

from torch import Tensor, nn

POOLINGS = ("mean", "last")


class SequenceContextEncoder(nn.Module):
    """Contexts ``c_t`` of Contrastive Predictive Coding (van den Oord, Li and Vinyals 2018, arXiv 1807.03748),
    pooled: ``(B, C, L)`` -> frames ``(B, T, D)`` -> GRU contexts ``(B, T, H)`` -> ``(B, H)``.

    Args:
        frames: the frame encoder ``g_enc``, with ``forward_sequence(x) -> (B, T, D)`` and ``feature_dim`` (``D``).
        gru: the autoregressive model ``g_ar``, a batch-first ``nn.GRU`` taking ``D`` inputs.
        pooling: ``"mean"`` over time or ``"last"`` (``c_T``).
    """

    def __init__(self, frames: nn.Module, gru: nn.GRU, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if not gru.batch_first or gru.input_size != int(frames.feature_dim):
            raise ValueError(
                f"gru must be batch-first with input_size {frames.feature_dim} (the frames' size), got "
                f"batch_first={gru.batch_first}, input_size={gru.input_size}"
            )
        self.frames, self.gru, self.pooling = frames, gru, pooling
        self.feature_dim = int(gru.hidden_size)

    @classmethod
    def build(cls, frames: nn.Module, context_dim: int, gru_layers: int = 1, pooling: str = "mean"):
        """A new (untrained) GRU of ``context_dim`` units and ``gru_layers`` layers over ``frames``."""
        gru = nn.GRU(int(frames.feature_dim), context_dim, num_layers=gru_layers, batch_first=True)
        return cls(frames, gru, pooling)

    def contexts(self, x: Tensor) -> Tensor:
        """Causal contexts, ``(B, C, L)`` -> ``(B, T, H)``: ``c_t`` depends on frames ``z_1..z_t`` only."""
        if x.dim() != 3:
            raise ValueError(f"a sequence encoder takes (B, C, L) sequences, got shape {tuple(x.shape)}")
        return self.gru(self.frames.forward_sequence(x))[0]  # (B, T, H)

    def forward(self, x: Tensor) -> Tensor:
        c = self.contexts(x)  # (B, T, H)
        return c.mean(1) if self.pooling == "mean" else c[:, -1]  # (B, H)
