"""ResNet-18 and ResNet-50 encoders (torchvision, randomly initialised) with the classifier removed.

He, Zhang, Ren & Sun 2016, "Deep Residual Learning for Image Recognition" (CVPR). With ``small_input=True`` the stem is
the CIFAR variant used by SimCLR (Chen, Kornblith, Norouzi & Hinton 2020, "A Simple Framework for Contrastive
Learning of Visual Representations", appendix B.9): the 7x7 stride-2 first convolution becomes 3x3 stride 1 and the
first max pooling is removed, so a 32x32 image keeps its resolution through the stem.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torchvision.models import ResNet
from torchvision.models import resnet18 as tv_resnet18
from torchvision.models import resnet50 as tv_resnet50

from contrastkit.backbones.registry import register_backbone


def _adapt_resnet(model: ResNet, in_chans: int, small_input: bool) -> ResNet:
    """Replace the stem for ``in_chans`` / small inputs, drop ``fc``, and set ``feature_dim``."""
    if in_chans != 3 or small_input:
        out = model.conv1.out_channels
        if small_input:
            conv1 = nn.Conv2d(in_chans, out, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            conv1 = nn.Conv2d(in_chans, out, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision's ResNet init
        model.conv1 = conv1
    if small_input:
        model.maxpool = nn.Identity()
    model.feature_dim = model.fc.in_features  # D: 512 (ResNet-18) or 2048 (ResNet-50)
    model.fc = nn.Identity()  # forward now returns pooled features (B, D)
    return model


def _build(factory: Callable[..., ResNet], in_chans: int, small_input: bool, **kwargs) -> ResNet:
    if "num_classes" in kwargs:
        raise ValueError("num_classes is not used: backbones return features, the classifier is removed")
    return _adapt_resnet(factory(weights=None, **kwargs), in_chans, small_input)


@register_backbone
def resnet18(in_chans: int = 3, small_input: bool = False, **kwargs) -> ResNet:
    """ResNet-18 (He et al. 2016); features (B, 512).

    Args:
        in_chans: Number of input channels.
        small_input: CIFAR stem (3x3 stride-1 conv1, no max pooling), as in SimCLR's CIFAR-10 experiments.
        **kwargs: Passed to ``torchvision.models.resnet18`` (e.g. ``norm_layer``, ``zero_init_residual``).
    """
    return _build(tv_resnet18, in_chans, small_input, **kwargs)


@register_backbone
def resnet50(in_chans: int = 3, small_input: bool = False, **kwargs) -> ResNet:
    """ResNet-50 (He et al. 2016); features (B, 2048).

    Args:
        in_chans: Number of input channels.
        small_input: CIFAR stem (3x3 stride-1 conv1, no max pooling), as in SimCLR's CIFAR-10 experiments.
        **kwargs: Passed to ``torchvision.models.resnet50`` (e.g. ``norm_layer``, ``zero_init_residual``).
    """
    return _build(tv_resnet50, in_chans, small_input, **kwargs)
