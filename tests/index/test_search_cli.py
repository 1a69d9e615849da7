"""`contrastkit embed` -> `contrastkit index build` -> `contrastkit search --image`: an image finds itself first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.backbones import create_backbone, save_encoder
from contrastkit.cli.main import main


def test_embed_build_search_round_trip(tmp_path, capsys):
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
    encoder = save_encoder(backbone.eval(), tmp_path / "enc.safetensors", info)
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), mode="L").save(folder / f"img{i:02d}.png")
    quiet = ["--num-workers", "0", "--quiet"]
    assert main(["embed", str(encoder), str(folder), "--out", str(tmp_path / "emb"), *quiet]) == 0
    assert main(["index", "build", str(tmp_path / "emb"), "--out", str(tmp_path / "gallery.faiss")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "gallery.faiss"), "--image", str(folder / "img07.png"), "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    rank, score, path = lines[0].split()
    assert rank == "1" and path.endswith("img07.png") and float(score) == pytest.approx(1.0, abs=1e-4)
    scores = [float(line.split()[1]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    query = ["search", str(tmp_path / "gallery.faiss"), "--image", str(folder / "img07.png")]
    assert main([*query, "-k", "1000000000"]) == 0  # clamped to the index size: every row, printed once
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 20 and len({line.split()[2] for line in lines}) == 20
    assert main([*query, "-k", "0"]) == 2
    assert "-k must be >= 1, got 0" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "gallery.faiss"), "--text", "a shoe"]) == 2
    assert "image-only encoder cannot embed text" in capsys.readouterr().err
    assert main(["index", "build", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.faiss")]) == 2
    assert "contrastkit embed" in capsys.readouterr().err


def test_serves_default_batch_is_the_services():
    from contrastkit.cli.main import build_parser
    from contrastkit.index.search_service import MAX_BATCH

    args = build_parser().parse_args(["serve", "index.faiss"])
    assert args.max_batch == MAX_BATCH == 16
