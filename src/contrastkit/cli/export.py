"""``contrastkit export CKPT --out encoder.safetensors``: the encoder of a training checkpoint, as safetensors."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from contrastkit.backbones import create_backbone, save_encoder

BACKBONE_PREFIX = "method.backbone."


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the backbone of a ``contrastkit train`` checkpoint to ``out`` (+ ``out`` with ``.json``).

    The checkpoint is read with ``torch.load(weights_only=True)``: no code in it is run.

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: a file that is not a contrastkit training checkpoint (the message says what is missing).
    """
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(
            f"{path}: cannot be read safely as a checkpoint (weights_only=True): {e}".splitlines()[0]
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a Lightning checkpoint (no 'state_dict'); pass a .ckpt from contrastkit train")
    info = (ckpt.get("contrastkit") or {}).get("info")
    if not info:
        raise ValueError(f"{path}: a checkpoint without contrastkit metadata: not written by contrastkit train")
    state = {k[len(BACKBONE_PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(BACKBONE_PREFIX)}
    if not state:
        raise ValueError(f"{path}: no backbone weights ('{BACKBONE_PREFIX}*') in the checkpoint's state_dict")
    backbone = create_backbone(info["backbone"], in_chans=int(info["in_chans"]), small_input=bool(info["small_input"]))
    backbone.load_state_dict(state, strict=True)
    return save_encoder(backbone, out, info)
