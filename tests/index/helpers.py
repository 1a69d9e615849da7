"""A tiny image encoder file and a folder of random grey images, for the embed / index / serve tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from contrastkit.backbones import create_backbone, save_encoder


def tiny_image_encoder(path: Path) -> Path:
    """A random-init 3-block SmallCNN for 12x12 grey images, saved as an encoder file."""
    torch.manual_seed(0)
    backbone = create_backbone("small_cnn", in_chans=1, widths=(4, 8, 16))
    info = {"backbone": "small_cnn", "in_chans": 1, "small_input": False, "input_size": 12, "mean": [0.5],
            "std": [0.25], "backbone_kwargs": {"widths": [4, 8, 16]}}  # fmt: skip
    return save_encoder(backbone.eval(), path, info)


def random_images(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` random 12x12 grey PNGs named img00.png, img01.png, ... in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), mode="L").save(folder / f"img{i:02d}.png")
    return folder
