"""A small convolutional encoder for 28x28 images (MNIST-sized), fast enough for CPU tests and demos."""

from __future__ import annotations

from torch import Tensor, nn

from contrastkit.backbones.registry import register_backbone


def _conv_bn_relu(in_chans: int, out_chans: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Three 3x3 conv-BN-ReLU blocks (32, 64 stride 2, 128 stride 2) and global average pooling.

    On a 28x28 input the feature maps are 28x28, 14x14 and 7x7; the output is ``(B, 128)`` for any input size.

    Args:
        in_chans: Number of input channels.
        widths: Output channels of the three blocks; ``feature_dim`` is the last.
    """

    def __init__(self, in_chans: int = 1, widths: tuple[int, int, int] = (32, 64, 128)) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            _conv_bn_relu(in_chans, c1, stride=1),
            _conv_bn_relu(c1, c2, stride=2),
            _conv_bn_relu(c2, c3, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = c3

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (B, C3, H / 4, W / 4)
        return self.pool(x).flatten(1)  # (B, C3)


@register_backbone
def small_cnn(in_chans: int = 3, small_input: bool = False, **kwargs) -> SmallCNN:
    """Small CNN for 28x28 inputs; features (B, 128).

    Args:
        in_chans: Number of input channels.
        small_input: Ignored: this network is always meant for small inputs.
        **kwargs: Passed to :class:`SmallCNN` (``widths``).
    """
    del small_input
    return SmallCNN(in_chans=in_chans, **kwargs)
