"""``contrastkit export CKPT --out encoder.safetensors``: the encoder of a training checkpoint, as safetensors."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch

from contrastkit.backbones import save_encoder
from contrastkit.backbones.encoder_file import build_encoder
from contrastkit.outputs.output_target import OutputTarget

# where checkpoints written before the trainer recorded ``encoder_prefix`` keep the encoder's weights
BACKBONE_PREFIX = "method.backbone."
DUAL_PREFIX = "method.model."  # a CLIP run: both towers and their projections


def encoder_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], overwrite: bool) -> OutputTarget:
    """Where ``export`` and ``import-encoder`` write: the weights file and its JSON metadata beside it
    (``encoder.safetensors`` + ``encoder.json``), refused if they exist (without ``overwrite``) or are an input."""
    path = Path(out)
    if path.suffix.lower() == ".json":
        raise ValueError(f"--out {out}: the encoder's metadata is written beside it as .json; name the weights file "
                         "e.g. encoder.safetensors")  # fmt: skip
    return OutputTarget(path, inputs, overwrite, companions=[path.with_suffix(".json").name])


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
    keys = ckpt["contrastkit"].get("encoder_keys")  # recorded by the trainer; older checkpoints: a prefix by kind
    if keys is None:
        prefix = DUAL_PREFIX if info.get("kind") == "dual" else BACKBONE_PREFIX
        keys = {k[len(prefix) :]: k for k in ckpt["state_dict"] if k.startswith(prefix)}
    missing = [key for key in keys.values() if key not in ckpt["state_dict"]]
    if not keys or missing:
        raise ValueError(
            f"{path}: the encoder's weights are not in the checkpoint's state_dict (missing {missing[:3]})"
        )
    state = {name: ckpt["state_dict"][key] for name, key in keys.items()}
    encoder = build_encoder(info, str(path))
    encoder.load_state_dict(state, strict=True)
    return save_encoder(encoder, out, info)
