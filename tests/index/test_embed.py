"""`contrastkit embed`: rows equal the encoder's features, ids map rows to files, unreadable images skipped."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

import contrastkit
from contrastkit.backbones import create_backbone, save_encoder
from contrastkit.cli.main import main


def _encoder(tmp_path):
    torch.manual_seed(0)
    backbone = create_backbone("small_cnn", in_chans=1, widths=(4, 8, 16))
    info = {
        "backbone": "small_cnn",
        "in_chans": 1,
        "small_input": False,
        "input_size": 12,
        "mean": [0.5],
        "std": [0.25],
        "backbone_kwargs": {"widths": [4, 8, 16]},
    }
    return save_encoder(backbone.eval(), tmp_path / "enc.safetensors", info)


def test_embed_folder_matches_encoder_and_skips_bad_files(tmp_path, capsys):
    path = _encoder(tmp_path)
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(7):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), mode="L").save(folder / f"{i}.png")
    (folder / "bad.png").write_bytes(b"broken")
    out = tmp_path / "emb"
    assert (
        main(["embed", str(path), str(folder), "--out", str(out), "--batch-size", "3", "--num-workers", "0", "--quiet"])
        == 0
    )
    emb = np.load(out / "embeddings.npy")
    ids = (out / "ids.txt").read_text().split()
    summary = json.loads((out / "embed.json").read_text())
    assert emb.shape == (7, 16) and emb.dtype == np.float32 and len(ids) == 7
    assert [s["path"].endswith("bad.png") for s in summary["skipped"]] == [True]
    encoder = contrastkit.load_encoder(path)
    for row, file in zip(emb, ids, strict=True):
        image = torch.from_numpy(np.array(Image.open(file), dtype=np.float32))[None, None] / 255
        expected = encoder((image - 0.5) / 0.25)[0].detach().numpy()
        np.testing.assert_allclose(row, expected, rtol=1e-4, atol=1e-5)
    assert "wrote 7 x 16" in capsys.readouterr().out


def test_embed_builtin_split_float16(tmp_path):
    path = _encoder(tmp_path)
    out = tmp_path / "emb"
    assert (
        main(
            [
                "embed",
                str(path),
                "digits",
                "--split",
                "test",
                "--out",
                str(out),
                "--float16",
                "--num-workers",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    emb = np.load(out / "embeddings.npy")
    ids = (out / "ids.txt").read_text().split()
    assert emb.dtype == np.float16 and emb.shape[0] == len(ids) > 100
    assert ids[:3] == ["0", "1", "2"]  # built-in data sets: row i is index i


def test_embed_refuses_a_non_encoder(tmp_path, capsys):
    junk = tmp_path / "x.safetensors"
    junk.write_bytes(b"junk")
    assert main(["embed", str(junk), "digits", "--out", str(tmp_path / "o")]) == 2
    assert "not a safetensors file" in capsys.readouterr().err


def test_a_large_jpeg_is_embedded_from_a_reduced_scale_decode(tmp_path):
    """A photograph 4x (and more) the encoder's input: decoded at 1/8 (DCT scaling), as the serve page does, and
    the row is the encoder's features of exactly that decode brought to size."""
    from contrastkit.data.decode_image import decode_image
    from contrastkit.data.resize_center_crop import resize_center_crop

    path = _encoder(tmp_path)  # grey, 12 px: any shorter side >= 8 x 24 is read at 1/8
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (240, 320), dtype=np.uint8), mode="L").resize((640, 480))
    photo.save(folder / "large.jpg", quality=90)
    out = tmp_path / "emb"
    assert main(["embed", str(path), str(folder), "--out", str(out), "--num-workers", "0", "--quiet"]) == 0
    data = (folder / "large.jpg").read_bytes()
    reduced = decode_image(data, 1, min_side=12)
    assert reduced.shape == (1, 60, 80)  # 480 / 8
    image = resize_center_crop(reduced, 12).float()[None] / 255  # (1, 1, 12, 12)
    expected = contrastkit.load_encoder(path)((image - 0.5) / 0.25)[0].detach().numpy()
    np.testing.assert_allclose(np.load(out / "embeddings.npy")[0], expected, rtol=1e-4, atol=1e-5)
    whole = resize_center_crop(decode_image(data, 1), 12)
    assert not torch.equal(whole, resize_center_crop(reduced, 12))  # the test tells the two decodes apart
