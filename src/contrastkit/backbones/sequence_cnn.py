"""A strided 1-D convolutional encoder for sequences, CPC's ``g_enc`` (van den Oord et al. 2018, arXiv 1807.03748)."""

from __future__ import annotations

from torch import Tensor, nn

from contrastkit.backbones.registry import register_backbone


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of each time step: ``(B, C, T)`` in, same out.

    Unlike BatchNorm (statistics over the batch and all time steps) or a per-sequence norm, it mixes nothing
    across time or across sequences, so frame ``t`` carries no information about later frames or about the
    negatives of the batch; Rivière et al. 2020 (arXiv 2002.02848) likewise replace CPC's BatchNorm with a
    channel-wise normalisation.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)  # (B, C, T)


class SequenceCNN(nn.Module):
    """Strided Conv1d-ChannelNorm-ReLU blocks mapping ``(B, C, L)`` signals to ``(B, T, width)`` frames.

    The paper's audio encoder has five blocks of 512 channels with strides (5, 4, 2, 2, 2) and kernels
    (10, 8, 4, 4, 4): one frame per 160 samples (10 ms at 16 kHz). This one keeps the shape of that design,
    kernel ``2 * stride`` with padding ``stride // 2`` (so an even stride gives exactly ``L / stride`` frames), and
    defaults to a small version for short synthetic signals: strides (4, 2) (8x downsampling) and 64 channels.
    ``strides=(5, 4, 2, 2, 2), width=512`` is the paper's encoder (ChannelNorm in place of its BatchNorm).

    ``forward_sequence`` gives the per-frame encodings ``z_t`` that CPC predicts; ``forward`` averages them over
    time, so the module also satisfies the :class:`~contrastkit.backbones.Backbone` contract ``(B, feature_dim)``.

    Args:
        in_chans: channels ``C`` of the input signal.
        strides: stride of each block; their product is the downsampling factor.
        width: channels of every block; ``feature_dim`` is ``width``.
    """

    def __init__(self, in_chans: int = 1, strides: tuple[int, ...] = (4, 2), width: int = 64) -> None:
        super().__init__()
        if not strides or any(s < 1 for s in strides):
            raise ValueError(f"strides must be a non-empty sequence of positive ints, got {strides!r}")
        layers: list[nn.Module] = []
        chans = in_chans
        for s in strides:
            layers += [
                nn.Conv1d(chans, width, kernel_size=2 * s, stride=s, padding=s // 2),
                ChannelNorm(width),
                nn.ReLU(inplace=True),
            ]
            chans = width
        self.features = nn.Sequential(*layers)
        self.strides = tuple(strides)
        self.feature_dim = width

    @property
    def downsampling(self) -> int:
        """Input samples per output frame (the product of the strides)."""
        out = 1
        for s in self.strides:
            out *= s
        return out

    def forward_sequence(self, x: Tensor) -> Tensor:
        """Per-frame encodings ``z``: ``(B, C, L)`` -> ``(B, T, feature_dim)``, ``T ~ L / downsampling``."""
        return self.features(x).transpose(1, 2)  # (B, T, D)

    def forward(self, x: Tensor) -> Tensor:
        """Time-averaged encodings ``(B, feature_dim)``."""
        return self.forward_sequence(x).mean(1)  # (B, D)


@register_backbone
def sequence_cnn(in_chans: int = 1, small_input: bool = False, **kwargs) -> SequenceCNN:
    """CPC's strided 1-D conv encoder for ``(B, C, L)`` signals; features ``(B, width)`` (64 by default).

    Args:
        in_chans: Number of signal channels.
        small_input: Ignored (the strides set the resolution).
        **kwargs: Passed to :class:`SequenceCNN` (``strides``, ``width``).
    """
    del small_input
    return SequenceCNN(in_chans=in_chans, **kwargs)
