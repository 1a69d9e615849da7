"""load_encoder returns an encoder typed by what it embeds, with the file's preprocessing; the file's weights stay
under the model's own keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import contrastkit
from contrastkit.backbones import (
    ImageEncoder,
    ImageTextEncoder,
    SequenceEncoder,
    TextEncoder,
    create_backbone,
    save_encoder,
)
from contrastkit.backbones.dual_encoder import DualEncoder, create_text_encoder
from contrastkit.data.image_preprocess import ImagePreprocess

GREY = {"backbone": "small_cnn", "in_chans": 1, "small_input": False, "backbone_kwargs": {"widths": [4, 8, 16]}}


def _image_file(tmp_path, size=12, mean=(0.5,), std=(0.25,)):
    torch.manual_seed(0)
    backbone = create_backbone("small_cnn", in_chans=1, widths=(4, 8, 16)).eval()
    info = {**GREY, "input_size": size, "mean": list(mean), "std": list(std)}
    return save_encoder(backbone, tmp_path / "image.safetensors", info), backbone


def test_an_image_encoder_is_typed_and_keeps_the_files_keys(tmp_path):
    path, backbone = _image_file(tmp_path)
    encoder = contrastkit.load_encoder(path)
    assert isinstance(encoder, ImageEncoder) and not isinstance(encoder, TextEncoder)
    assert encoder.kind == "image" and encoder.feature_dim == 16 and encoder.encoder_path == str(path.resolve())
    assert encoder.model.state_dict().keys() == backbone.state_dict().keys()  # the file's keys, unprefixed
    x = torch.randn(3, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), backbone(x))  # calling it is calling the model
        torch.testing.assert_close(encoder.encode_image(x), F.normalize(backbone(x), dim=-1))
        torch.testing.assert_close(encoder.encode_image(x, normalize=False), backbone(x))
    # saving a loaded encoder writes the same file contents
    again = save_encoder(encoder, tmp_path / "again.safetensors", dict(encoder.encoder_info))
    assert contrastkit.load_encoder(again).model.state_dict().keys() == backbone.state_dict().keys()


def test_preprocess_follows_the_files_size_mean_and_std(tmp_path):
    path, _ = _image_file(tmp_path, size=12, mean=(0.4,), std=(0.2,))
    preprocess = contrastkit.load_encoder(path).preprocess
    assert preprocess == ImagePreprocess(12, 1, (0.4,), (0.2,))
    pixels = np.random.default_rng(0).integers(0, 256, (12, 12), dtype=np.uint8)
    expected = (torch.from_numpy(pixels).float()[None] / 255 - 0.4) / 0.2  # written out: scale, then normalise
    torch.testing.assert_close(preprocess(Image.fromarray(pixels)), expected)
    torch.testing.assert_close(preprocess(pixels), expected)
    torch.testing.assert_close(preprocess(torch.from_numpy(pixels)[None]), expected)
    # an RGB picture for a grey encoder: PIL's own "L" conversion
    rgb = np.random.default_rng(1).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    torch.testing.assert_close(preprocess(Image.fromarray(rgb)), (torch.tensor(grey).float()[None] / 255 - 0.4) / 0.2)
    # a larger, non-square picture: shorter side to 12, centre crop
    wide = Image.fromarray(np.random.default_rng(2).integers(0, 256, (24, 40), dtype=np.uint8))
    assert preprocess(wide).shape == (1, 12, 12)
    half = np.asarray(wide.resize((20, 12), Image.BILINEAR))[:, 4:16]  # an independent resize, same crop
    assert (preprocess(wide) * 0.2 + 0.4).mul(255).sub(torch.from_numpy(half.astype(np.float32))).abs().mean() < 3
    with pytest.raises(TypeError, match="PIL image"):
        preprocess("image.png")


def test_preprocess_refuses_inconsistent_settings():
    with pytest.raises(ValueError, match="mean and std need 3 values"):
        ImagePreprocess(32, 3, (0.5,), (0.5,))
    with pytest.raises(ValueError, match="interpolation"):
        ImagePreprocess(32, 1, (0.5,), (0.5,), "nearest")


def test_text_and_image_text_encoders(tmp_path):
    torch.manual_seed(0)
    text = create_text_encoder("transformer", width=16, layers=1, heads=2, max_length=16)
    path = save_encoder(text.eval(), tmp_path / "text.safetensors", {"kind": "text", "text_encoder": text.text_config})
    encoder = contrastkit.load_encoder(path)
    assert isinstance(encoder, TextEncoder) and not isinstance(encoder, ImageEncoder) and encoder.kind == "text"
    with torch.no_grad():
        torch.testing.assert_close(
            encoder.encode_text(["a shoe", "a bag"]), F.normalize(text(["a shoe", "a bag"]), dim=-1)
        )

    image = create_backbone("small_cnn", in_chans=1, widths=(4, 8, 16))
    dual = DualEncoder(image, create_text_encoder("transformer", width=16, layers=1, heads=2, max_length=16), 8).eval()
    info = {**GREY, "kind": "dual", "input_size": 12, "mean": [0.5], "std": [0.5], "embed_dim": 8}
    info["text_encoder"] = dual.text_encoder.text_config
    encoder = contrastkit.load_encoder(save_encoder(dual, tmp_path / "dual.safetensors", info))
    assert (
        isinstance(encoder, ImageTextEncoder) and isinstance(encoder, ImageEncoder) and isinstance(encoder, TextEncoder)
    )
    x = torch.randn(2, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_image(x), dual.encode_image(x))
        torch.testing.assert_close(encoder.encode_text(["a shoe"]), dual.encode_text(["a shoe"]))
        assert encoder.encode_image(x).shape == (2, 8) and encoder.preprocess.size == 12


def test_a_sequence_encoder(tmp_path):
    from contrastkit.backbones.sequence_context import SequenceContextEncoder

    torch.manual_seed(0)
    frames = create_backbone("sequence_cnn", in_chans=1)
    model = SequenceContextEncoder.build(frames, 12, 1, "mean").eval()
    info = {"kind": "sequence", "backbone": "sequence_cnn", "in_chans": 1, "context_dim": 12, "small_input": False}
    encoder = contrastkit.load_encoder(save_encoder(model, tmp_path / "seq.safetensors", info))
    assert isinstance(encoder, SequenceEncoder) and not isinstance(encoder, ImageEncoder)
    x = torch.randn(2, 1, 64)
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_sequence(x), F.normalize(model(x), dim=-1))
