"""Encoder files: backbone weights as safetensors, with what rebuilding and using them needs as JSON metadata.

``save_encoder`` writes ``encoder.safetensors`` (tensors + a ``contrastkit`` JSON metadata entry) and the same JSON
beside it (``encoder.json``) for people and other tools. ``load_encoder`` rebuilds the backbone from the registry
and loads the weights strictly: nothing is unpickled, so a file from anywhere is safe to open.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from contrastkit.backbones.registry import create_backbone

if TYPE_CHECKING:
    from contrastkit.backbones.encoder import Encoder

FORMAT = "contrastkit-encoder"
FORMAT_VERSION = 1
METADATA_KEY = "contrastkit"


class EncoderFileError(ValueError):
    """A file that is not a readable contrastkit encoder; the message names the file and what is wrong."""


def save_encoder(backbone: nn.Module, path: str | os.PathLike, info: dict[str, Any]) -> Path:
    """Write ``backbone``'s weights to ``path`` (safetensors) and ``info`` as JSON metadata and ``<path>.json``.

    Args:
        backbone: the encoder module.
        path: output file, conventionally ``*.safetensors``.
        info: at least ``backbone`` (registry name) and ``in_chans``; usually also ``small_input``,
            ``feature_dim``, ``input_size``, ``mean``, ``std`` and the training ``config``.

    Returns:
        The path written. The file is written to a temporary name then renamed (never half-written).
    """
    required = ("text_encoder",) if info.get("kind") == "text" else ("backbone", "in_chans")
    if info.get("kind") == "dual":
        required = ("in_chans",) if "library" in info else (*required, "text_encoder")
    if info.get("kind") == "sequence":
        required = (*required, "context_dim")
    for key in required:
        if key not in info:
            raise ValueError(f"info must contain {key!r} to rebuild the encoder, got keys {sorted(info)}")
    from contrastkit.backbones.encoder import Encoder

    if isinstance(backbone, Encoder):  # a loaded encoder: the file holds its model's weights
        backbone = backbone.model
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "feature_dim": int(backbone.feature_dim), **info}
    return write_module_file(backbone, path, meta)


def write_module_file(module: nn.Module, path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """``module``'s weights as safetensors at ``path`` with ``meta`` as its contrastkit JSON metadata, and the same
    JSON beside it (``<path>.json``). Written to a temporary name then renamed: never half a file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(meta)})
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def read_file_metadata(path: str | os.PathLike, what: str = "encoder") -> dict[str, Any]:
    """The contrastkit JSON metadata of a safetensors file (no weights loaded), whatever it holds.

    Raises:
        FileNotFoundError: no such file.
        EncoderFileError: not a safetensors file, no contrastkit metadata, or metadata that is not JSON.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise EncoderFileError(f"{path}: not a safetensors file ({e}); export one with `contrastkit export`") from None
    if METADATA_KEY not in metadata:
        raise EncoderFileError(f"{path}: a safetensors file without contrastkit metadata: not a contrastkit export")
    try:
        return json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as e:
        raise EncoderFileError(f"{path}: its contrastkit metadata is not valid JSON ({e})") from None


def read_encoder_info(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of an encoder file (no weights loaded)."""
    info = read_file_metadata(path)
    if info.get("format") != FORMAT:
        raise EncoderFileError(f"{path}: metadata format {info.get('format')!r} is not {FORMAT!r}")
    if int(info.get("format_version", 0)) > FORMAT_VERSION:
        raise EncoderFileError(
            f"{path}: encoder format version {info['format_version']} is newer than this contrastkit reads "
            f"({FORMAT_VERSION}); upgrade contrastkit"
        )
    return info


def build_image_backbone(info: dict[str, Any]) -> nn.Module:
    """The (untrained) registry backbone an encoder file's metadata names: the encoder of an ``image`` file, the
    image tower of a ``dual`` one, the frame encoder of a ``sequence`` one."""
    kwargs = dict(info.get("backbone_kwargs") or {})
    return create_backbone(
        info["backbone"], in_chans=int(info["in_chans"]), small_input=bool(info.get("small_input")), **kwargs
    )


def build_encoder(info: dict[str, Any], source: str = "encoder metadata") -> nn.Module:
    """The (untrained) module an encoder file's metadata describes: ``kind`` ``image`` (a registry backbone, the
    default), ``text`` (a text tower), ``dual`` (image and text towers with projections, from a CLIP run) or
    ``sequence`` (a frame encoder and its GRU context, from a CPC run)."""
    kind = info.get("kind", "image")
    if kind not in ("image", "text", "dual", "sequence"):
        raise EncoderFileError(f"{source}: unknown encoder kind {kind!r} (expected image, text, dual or sequence)")
    if kind == "sequence":
        from contrastkit.backbones.sequence_context import SequenceContextEncoder

        frames = build_image_backbone(info)  # the registry backbone (sequence_cnn), as for images
        layers, pooling = int(info.get("gru_layers", 1)), str(info.get("pooling", "mean"))
        return SequenceContextEncoder.build(frames, int(info["context_dim"]), layers, pooling)
    if kind == "text":
        from contrastkit.backbones.dual_encoder import build_text_encoder

        return build_text_encoder(info["text_encoder"])
    if kind == "dual" and "library" in info:  # imported from another library (contrastkit import-encoder)
        return _imported_dual(info, source)
    image = build_image_backbone(info)
    if kind == "image":
        return image
    from contrastkit.backbones.dual_encoder import DualEncoder, build_text_encoder

    text = build_text_encoder(info["text_encoder"])
    return DualEncoder(
        image,
        text,
        embed_dim=int(info["embed_dim"]),
        lock_text=bool(info.get("lock_text")),
        project_text=bool(info.get("project_text", True)),
    )


def _imported_dual(info: dict[str, Any], source: str) -> nn.Module:
    """The image-text model of an imported open_clip or transformers CLIP encoder file."""
    if info["library"] == "open_clip":
        from contrastkit.backbones.open_clip_encoder import OpenCLIPEncoder

        return OpenCLIPEncoder(info["model_cfg"])
    if info["library"] == "transformers":
        from contrastkit.backbones.hf_encoder import HFCLIPEncoder

        return HFCLIPEncoder(info["hf_config"], info["tokenizer_files"])
    raise EncoderFileError(f"{source}: unknown image-text library {info['library']!r} (open_clip or transformers)")


def load_encoder(path: str | os.PathLike, device: torch.device | str = "cpu") -> Encoder:
    """The encoder saved at ``path``, in eval mode, typed by what it embeds.

    Args:
        path: an ``encoder.safetensors`` from ``contrastkit train``, ``export`` or ``import-encoder``.
        device: where to put the weights.

    Returns:
        An :class:`~contrastkit.backbones.encoder.ImageEncoder` (``encode_image``, ``preprocess``), a
        ``TextEncoder`` (``encode_text``, from a text-pairs run), an ``ImageTextEncoder`` (both, from a clip run or
        an imported CLIP) or a ``SequenceEncoder`` (``encode_sequence``, from a CPC run). Calling it is calling
        ``encoder.model``, the module the file's weights belong to; ``encoder_info`` holds the metadata,
        ``encoder_path`` the file it came from.

    Raises:
        FileNotFoundError: no such file.
        EncoderFileError: not a safetensors file, not a contrastkit export, or weights that do not fit the backbone.
    """
    from safetensors.torch import load_file

    from contrastkit.backbones.encoder import typed_encoder

    info = read_encoder_info(path)
    model = build_encoder(info, str(path))
    state = load_file(str(path), device=str(device))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        name = info.get("backbone") or info.get("text_encoder", {}).get("name")
        raise EncoderFileError(f"{path}: weights do not fit encoder {name!r}: {first}") from None
    return typed_encoder(model, info, str(Path(path).resolve())).to(device).eval()
