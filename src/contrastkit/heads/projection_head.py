"""MLP projection head built from a list of (Linear, BatchNorm, activation) blocks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

from torch import Tensor, nn

# (in_features, out_features, batch_norm or None, activation or None)
Block = tuple[int, int, nn.Module | None, nn.Module | None]


class ProjectionHead(nn.Module):
    """MLP projection head mapping backbone features to the space where the loss is computed.

    Chen, Kornblith, Norouzi & Hinton 2020, "A Simple Framework for Contrastive Learning of Visual
    Representations" (SimCLR, arXiv 2002.05709). The head is built from ``num_layers`` blocks
    ``Linear -> BatchNorm1d (optional) -> activation``; the last block has no activation and has a BatchNorm
    only when ``last_batch_norm``. A Linear followed by a BatchNorm has no bias (the BN shift makes it
    redundant). Recipes from the papers:

    * SimCLR v1: ``num_layers=2``, no BN on the output (the defaults). lightly's ``SimCLRProjectionHead``
      puts an affine BN on the output too, which is ``last_batch_norm=True``.
    * BYOL (Grill et al. 2020, arXiv 2006.07733): ``ProjectionHead(2048, 4096, 256)``, 2 layers, no BN on
      the output.
    * SimSiam (Chen & He 2021, arXiv 2011.10566): 3 layers, BN on every fc "including its output fc", no ReLU
      on the output; the reference code uses a non-affine output BN:
      ``ProjectionHead(2048, 2048, 2048, num_layers=3, last_batch_norm=True, last_affine=False)``.
    * Barlow Twins (Zbontar et al. 2021, arXiv 2103.03230) and VICReg (Bardes et al. 2022, arXiv 2105.04906):
      3 layers of width 8192 and no BN on the output (Barlow Twins' loss standardises the embeddings itself):
      ``ProjectionHead(2048, 8192, 8192, num_layers=3)``.

    Args:
        input_dim: feature dimension of the backbone output.
        hidden_dim: width of the hidden layers.
        output_dim: dimension of the projection.
        num_layers: number of Linear layers (at least 1; 1 means a single Linear layer).
        batch_norm: BatchNorm1d after every hidden Linear layer.
        last_batch_norm: BatchNorm1d after the output Linear layer.
        activation: factory of the hidden non-linearity, called once per hidden layer.
        last_affine: whether the output BatchNorm (if any) has learnable scale and shift.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int = 2,
        batch_norm: bool = True,
        last_batch_norm: bool = False,
        activation: Callable[[], nn.Module] = nn.ReLU,
        last_affine: bool = True,
    ) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        blocks: list[Block] = [
            (d_in, d_out, nn.BatchNorm1d(d_out) if batch_norm else None, activation())
            for d_in, d_out in pairwise(dims[:-1])
        ]
        last_bn = nn.BatchNorm1d(output_dim, affine=last_affine) if last_batch_norm else None
        blocks.append((dims[-2], output_dim, last_bn, None))
        super().__init__()
        self.layers = build_mlp(blocks)

    @classmethod
    def from_blocks(cls, blocks: Sequence[Block]) -> ProjectionHead:
        """A head with an explicit list of ``(in_features, out_features, batch_norm, activation)`` blocks."""
        head = cls.__new__(cls)
        nn.Module.__init__(head)
        head.layers = build_mlp(blocks)
        return head

    def forward(self, x: Tensor) -> Tensor:
        """Project ``x`` of shape ``(B, input_dim)`` to ``(B, output_dim)``."""
        return self.layers(x)  # (B, output_dim)


def build_mlp(blocks: Sequence[Block]) -> nn.Sequential:
    """``nn.Sequential`` of ``Linear [-> BatchNorm] [-> activation]`` per block; bias off when a BN follows."""
    layers: list[nn.Module] = []
    for d_in, d_out, batch_norm, activation in blocks:
        layers.append(nn.Linear(d_in, d_out, bias=batch_norm is None))
        if batch_norm is not None:
            layers.append(batch_norm)
        if activation is not None:
            layers.append(activation)
    return nn.Sequential(*layers)
