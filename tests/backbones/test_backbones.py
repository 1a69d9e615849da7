"""Tests for the backbone registry and the built-in encoders (tiny inputs, CPU)."""

import pytest
import torch
from torch import nn

from contrastkit.backbones import create_backbone, list_backbones, register_backbone

BATCH = 2
# Input side per backbone when built with small_input=True (default 32, CIFAR-sized).
INPUT_SIZE = {"small_cnn": 28}


def _first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def test_builtins_registered():
    assert {"resnet18", "resnet50", "small_cnn", "vit_tiny", "vit_small"} <= set(list_backbones())
    assert list_backbones() == sorted(list_backbones())


# sequence_cnn: tests/methods/test_cpc.py; the wrappers of other libraries' models (published architectures,
# 3 channels, no small-input stem): tests/backbones/test_import_encoder.py
IMPORTED = {"torchvision_model", "timm_model", "hf_vision"}
IMAGE_BACKBONES = [n for n in list_backbones() if n != "sequence_cnn" and n not in IMPORTED]


@pytest.mark.parametrize("name", IMAGE_BACKBONES)
@pytest.mark.parametrize("in_chans", [3, 1])
def test_forward_shape_finite_and_grad(name, in_chans):
    model = create_backbone(name, in_chans=in_chans, small_input=True)
    assert isinstance(model.feature_dim, int) and model.feature_dim > 0
    size = INPUT_SIZE.get(name, 32)
    x = torch.randn(BATCH, in_chans, size, size)  # (B, C, H, W)
    feats = model(x)  # (B, D)
    assert feats.shape == (BATCH, model.feature_dim)
    assert torch.isfinite(feats).all()
    feats.square().mean().backward()
    conv = _first_conv(model)
    assert conv.in_channels == in_chans
    assert conv.weight.grad is not None
    assert torch.isfinite(conv.weight.grad).all() and conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("name", "dim"), [("resnet18", 512), ("resnet50", 2048), ("small_cnn", 128), ("vit_tiny", 192), ("vit_small", 384)]
)
def test_feature_dims(name, dim):
    assert create_backbone(name, small_input=True).feature_dim == dim


def test_resnet18_small_input_stem_keeps_resolution():
    model = create_backbone("resnet18", small_input=True)
    assert model.feature_dim == 512
    assert model.conv1.stride == (1, 1) and model.conv1.kernel_size == (3, 3) and model.conv1.padding == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    assert isinstance(model.fc, nn.Identity)
    x = torch.randn(BATCH, 3, 32, 32)  # (B, C, H, W)
    stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    assert stem.shape == (BATCH, 64, 32, 32)


def test_resnet18_default_stem_is_imagenet():
    model = create_backbone("resnet18")
    assert model.conv1.stride == (2, 2) and model.conv1.kernel_size == (7, 7)
    assert isinstance(model.maxpool, nn.MaxPool2d)


def test_vit_image_size_and_class_token():
    model = create_backbone("vit_tiny", image_size=32)  # patch 16 -> 4 tokens + class token
    assert model.patch_size == 16 and model.image_size == 32
    assert isinstance(model.heads, nn.Identity)
    assert model(torch.randn(BATCH, 3, 32, 32)).shape == (BATCH, 192)
    small = create_backbone("vit_small", small_input=True)
    assert small.patch_size == 4 and small.image_size == 32 and small.seq_length == 64 + 1


def test_duplicate_registration_raises():
    def resnet18(in_chans=3, small_input=False, **kwargs):
        raise AssertionError("must not be called")

    before = list_backbones()
    with pytest.raises(ValueError, match="already registered"):
        register_backbone(resnet18)
    assert list_backbones() == before
    model = create_backbone("resnet18")  # the original is still the one registered
    assert model.feature_dim == 512


def test_unknown_name_lists_names_and_suggests_closest():
    with pytest.raises(ValueError) as info:
        create_backbone("resnet19")
    msg = str(info.value)
    assert "Did you mean 'resnet18'?" in msg
    for name in list_backbones():
        assert name in msg
    with pytest.raises(ValueError, match="Did you mean 'vit_small'"):
        create_backbone("vit_smal")


def test_unknown_name_without_close_match_still_lists_names():
    with pytest.raises(ValueError, match="Available backbones") as info:
        create_backbone("zzzzzz")
    assert "Did you mean" not in str(info.value)


def test_num_classes_rejected():
    with pytest.raises(ValueError, match="num_classes"):
        create_backbone("resnet18", num_classes=10)


def test_small_cnn_wide_has_four_blocks_and_centred_features():
    from contrastkit.backbones import SmallCNN

    torch.manual_seed(0)
    model = create_backbone("small_cnn_wide", in_chans=1)
    assert model.feature_dim == 256 and len(model.features) == 4
    x = torch.rand(64, 1, 28, 28)
    features = model(x)  # (64, 256), train mode: batch statistics
    pooled = model.pool(model.features(x)).flatten(1).detach()  # (64, 256), all >= 0
    # the feature BatchNorm at initialisation, written out: (x - batch mean) / sqrt(biased batch variance + eps)
    expected = (pooled - pooled.mean(0)) / (pooled.var(0, unbiased=False) + 1e-5).sqrt()
    torch.testing.assert_close(features.detach(), expected, atol=1e-4, rtol=1e-4)
    assert bool((pooled >= 0).all()) and bool((features < 0).any())
    plain = create_backbone("small_cnn", in_chans=1)  # no feature norm: average-pooled ReLUs, all >= 0
    assert bool((plain(torch.rand(8, 1, 28, 28)) >= 0).all())
    with pytest.raises(ValueError, match="widths"):
        SmallCNN(widths=())
