"""Vision Transformer encoders at the DeiT-Tiny and DeiT-Small sizes (torchvision, randomly initialised).

Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale" (ICLR);
Touvron et al. 2021, "Training data-efficient image transformers & distillation through attention" (ICML), whose
Tiny (12 layers, 3 heads, width 192, MLP 768) and Small (12 layers, 6 heads, width 384, MLP 1536) sizes are used.
The classification head is removed, so the output is the final class token ``(B, D)``.
"""

from __future__ import annotations

import math

from torch import nn
from torchvision.models import VisionTransformer

from contrastkit.backbones.registry import register_backbone


def _build_vit(
    num_heads: int,
    hidden_dim: int,
    mlp_dim: int,
    in_chans: int,
    small_input: bool,
    image_size: int | None = None,
    patch_size: int | None = None,
    num_layers: int = 12,
    **kwargs,
) -> VisionTransformer:
    """A headless torchvision ViT; ``small_input`` defaults to 32x32 images in 4x4 patches (64 tokens)."""
    if "num_classes" in kwargs:
        raise ValueError("num_classes is not used: backbones return features, the classifier is removed")
    if image_size is None:
        image_size = 32 if small_input else 224
    if patch_size is None:
        patch_size = 4 if small_input else 16
    model = VisionTransformer(
        image_size=image_size,
        patch_size=patch_size,
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        mlp_dim=mlp_dim,
        **kwargs,
    )
    if in_chans != 3:
        conv = nn.Conv2d(in_chans, hidden_dim, kernel_size=patch_size, stride=patch_size)
        fan_in = in_chans * patch_size * patch_size  # as torchvision's VisionTransformer init
        nn.init.trunc_normal_(conv.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(conv.bias)
        model.conv_proj = conv
    model.heads = nn.Identity()  # forward now returns the class token (B, D)
    model.feature_dim = hidden_dim
    return model


@register_backbone
def vit_tiny(in_chans: int = 3, small_input: bool = False, **kwargs) -> VisionTransformer:
    """ViT-Tiny / DeiT-Ti (12 layers, 3 heads, width 192, MLP 768); features (B, 192).

    Args:
        in_chans: Number of input channels.
        small_input: Default to ``image_size=32, patch_size=4`` instead of ``224, 16``.
        **kwargs: ``image_size``, ``patch_size`` and other ``VisionTransformer`` arguments (e.g. ``dropout``).
    """
    return _build_vit(3, 192, 768, in_chans, small_input, **kwargs)


@register_backbone
def vit_small(in_chans: int = 3, small_input: bool = False, **kwargs) -> VisionTransformer:
    """ViT-Small / DeiT-S (12 layers, 6 heads, width 384, MLP 1536); features (B, 384).

    Args:
        in_chans: Number of input channels.
        small_input: Default to ``image_size=32, patch_size=4`` instead of ``224, 16``.
        **kwargs: ``image_size``, ``patch_size`` and other ``VisionTransformer`` arguments (e.g. ``dropout``).
    """
    return _build_vit(6, 384, 1536, in_chans, small_input, **kwargs)
