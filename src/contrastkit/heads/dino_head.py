"""DINO head: MLP, bottleneck, L2 normalisation and a weight-normalised prototype layer."""

from __future__ import annotations

from itertools import pairwise

from torch import Tensor, nn
from torch.nn.functional import normalize
from torch.nn.utils.parametrizations import weight_norm

from contrastkit.heads.projection_head import Block, build_mlp


class DINOHead(nn.Module):
    """Projection head of DINO.

    Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers" (DINO, arXiv 2104.14294):
    "a 3-layer multi-layer perceptron (MLP) with hidden dimension 2048 followed by l2 normalization and a
    weight normalized fully connected layer with K dimensions". As in the reference code
    (facebookresearch/dino): GELU activations, hidden Linear weights drawn from a truncated normal with std
    0.02 (cut at +-2) and zero biases; the last layer has no bias, default Linear init and its weight-norm
    magnitude ``g`` filled with 1 and frozen when ``norm_last_layer``, so every output unit's weight vector
    keeps unit norm. Unlike the reference, a Linear followed by a BatchNorm (``batch_norm=True``) has no bias.

    The weight norm uses ``torch.nn.utils.parametrizations.weight_norm``: ``g`` is
    ``last_layer.parametrizations.weight.original0`` ``(K, 1)`` and the direction ``v`` is ``original1``
    ``(K, bottleneck_dim)``.

    Args:
        input_dim: feature dimension of the backbone output.
        output_dim: number of prototypes K (65536 in the paper).
        hidden_dim: width of the hidden layers.
        bottleneck_dim: dimension of the L2-normalised bottleneck.
        num_layers: number of Linear layers before the bottleneck output (at least 1).
        batch_norm: BatchNorm1d after the hidden layers (False for ViT backbones).
        norm_last_layer: freeze the last layer's weight-norm magnitude at 1.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        num_layers: int = 3,
        batch_norm: bool = False,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [bottleneck_dim]
        blocks: list[Block] = [
            (d_in, d_out, nn.BatchNorm1d(d_out) if batch_norm else None, nn.GELU())
            for d_in, d_out in pairwise(dims[:-1])
        ]
        blocks.append((dims[-2], bottleneck_dim, None, None))
        self.layers = build_mlp(blocks)
        self.layers.apply(_init_weights)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, output_dim, bias=False))
        g = self.last_layer.parametrizations.weight.original0  # (K, 1)
        g.data.fill_(1.0)
        g.requires_grad_(not norm_last_layer)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` of shape ``(B, input_dim)`` to prototype scores ``(B, output_dim)``."""
        z = self.layers(x)  # (B, bottleneck_dim)
        z = normalize(z, dim=-1, p=2)  # (B, bottleneck_dim)
        return self.last_layer(z)  # (B, output_dim)

    def cancel_last_layer_gradients(self, epoch: int, freeze_epochs: int = 1) -> None:
        """Drop the last layer's gradients while ``epoch < freeze_epochs``; call between backward and step.

        As DINO's ``cancel_gradients_last_layer``, the gradients are set to ``None`` rather than zeroed, so the
        optimizer skips the last layer entirely (no momentum or weight-decay update either).

        Args:
            epoch: current epoch, counted from 0.
            freeze_epochs: number of initial epochs during which the last layer is kept fixed (DINO: 1).
        """
        cancel_last_layer_gradients(self, epoch, freeze_epochs)


def cancel_last_layer_gradients(head: DINOHead, epoch: int, freeze_epochs: int = 1) -> None:
    """Functional form of :meth:`DINOHead.cancel_last_layer_gradients`."""
    if epoch >= freeze_epochs:
        return
    for p in head.last_layer.parameters():
        p.grad = None


def _init_weights(module: nn.Module) -> None:
    """Truncated-normal (std 0.02, cut at +-2) Linear weights and zero biases, as the DINO reference."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
