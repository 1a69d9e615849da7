"""A classifier made of an encoder and a linear head, and its file: safetensors weights + JSON metadata.

The file holds everything ``contrastkit predict`` needs and nothing that must be unpickled: the weights, the
encoder's metadata (to rebuild the architecture), the class names in class-id order and the preprocessing (input
size, channels, mean, std).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.backbones.encoder import ImageEncoder, ImageTextEncoder, TextEncoder, typed_encoder
from contrastkit.backbones.encoder_file import (
    EncoderFileError,
    build_encoder,
    build_image_backbone,
    read_file_metadata,
    write_module_file,
)

FORMAT = "contrastkit-classifier"
FORMAT_VERSION = 1
IMAGE_KEYS = ("input_size", "in_chans", "mean", "std")  # an image classifier's preprocessing


class ImageTower(nn.Module):
    """The image side of an image-text encoder: backbone, projection, L2 normalisation (no text tower).

    Its outputs are the embeddings zero-shot classification compares with class descriptions, so a linear head
    on them can start from the zero-shot class embeddings.
    """

    def __init__(self, image_encoder: nn.Module, projection: nn.Linear) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.image_projection = projection
        self.feature_dim = int(projection.out_features)

    def forward(self, images: Tensor) -> Tensor:
        return F.normalize(self.image_projection(self.image_encoder(images)), dim=-1)  # (B, E)


class TextTower(nn.Module):
    """The text side of an encoder, as a classifier trains it: strings (or their pre-tokenised
    :class:`~contrastkit.data.tokenized_texts.TokenizedTexts`) to L2-normalised embeddings ``(B, E)``.

    Args:
        text_model: a text tower (``tokenizer``, ``max_length``, ``feature_dim``; strings to features).
        projection: an image-text encoder's text projection into the shared space (None: the tower's own space).
    """

    def __init__(self, text_model: nn.Module, projection: nn.Module | None = None) -> None:
        super().__init__()
        self.text_model = text_model
        self.projection = projection if projection is not None else nn.Identity()
        out = getattr(projection, "out_features", None)
        self.feature_dim = int(out if out is not None else text_model.feature_dim)

    def forward(self, texts: Sequence[str]) -> Tensor:
        return F.normalize(self.projection(self.text_model(texts)), dim=-1)  # (B, E)


def text_tower_of(encoder: TextEncoder) -> TextTower:
    """The :class:`TextTower` a text classifier trains: a text encoder's model, or the text tower and projection of a
    contrastkit image-text encoder (an imported open_clip or transformers model has no separable text tower here).

    Raises:
        ValueError: an encoder without a separable text tower.
    """
    model = encoder.model
    if isinstance(encoder, ImageTextEncoder):
        if not hasattr(model, "text_projection"):
            raise ValueError(
                f"{encoder.encoder_info.get('library', 'this')} image-text encoder has no separate text tower to "
                "fine-tune: use a text encoder (contrastkit import-encoder sentence-transformers:FOLDER)"
            )
        return TextTower(model.text_encoder, model.text_projection if model.project_text else None)
    return TextTower(model)


class Classifier(nn.Module):
    """Logits ``(B, C)`` = ``head(encoder(inputs))``: an encoder with a linear classification head.

    Args:
        encoder: any module with ``feature_dim`` mapping images ``(B, C, H, W)`` (or texts, a :class:`TextTower`)
            to features ``(B, D)``.
        num_classes: classes of the head.
    """

    def __init__(self, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(int(encoder.feature_dim), int(num_classes))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, inputs: Tensor | Sequence[str]) -> Tensor:
        return self.head(self.encoder(inputs))  # (B, C)


def image_encoder_of(encoder: ImageEncoder) -> nn.Module:
    """The module a classifier trains on top of: the encoder's model, or for a contrastkit image-text encoder the
    :class:`ImageTower` of its model (an imported one, open_clip or transformers, stays whole: its forward gives the
    normalised image embeddings)."""
    model = encoder.model
    if isinstance(encoder, ImageTextEncoder) and hasattr(model, "image_projection"):
        return ImageTower(model.image_encoder, model.image_projection)
    return model


def save_classifier(classifier: Classifier, path: str | os.PathLike, info: dict[str, Any]) -> Path:
    """Write ``classifier`` to ``path`` (safetensors) with ``info`` as metadata, and the JSON beside it.

    Args:
        info: ``encoder`` (the encoder file's metadata), ``classes`` (names in class-id order), and for images
            ``input_size``, ``in_chans``, ``mean``, ``std``; ``"inputs": "text"`` marks a text classifier. Anything
            else (how it was trained) is kept as is.
    """
    required = ("encoder", "classes") if info.get("inputs") == "text" else ("encoder", "classes", *IMAGE_KEYS)
    for key in required:
        if key not in info:
            raise ValueError(f"info must contain {key!r}, got keys {sorted(info)}")
    if len(info["classes"]) != classifier.head.out_features:
        raise ValueError(f"{len(info['classes'])} class names for a head of {classifier.head.out_features} classes")
    return write_module_file(classifier, path, {"format": FORMAT, "format_version": FORMAT_VERSION, **info})


def _build(meta: dict[str, Any], source: str) -> Classifier:
    info = meta["encoder"]
    if meta.get("inputs") == "text":
        return Classifier(text_tower_of(typed_encoder(build_encoder(info, source), info)), len(meta["classes"]))
    if info.get("kind") == "dual" and "library" not in info:  # the image tower only, without a text model
        image = build_image_backbone(info)
        encoder = ImageTower(image, nn.Linear(int(image.feature_dim), int(info["embed_dim"]), bias=False))
    elif info.get("kind") == "text":
        raise EncoderFileError(f"{source}: a classifier needs an image encoder, this one is a text encoder")
    else:
        encoder = build_encoder(info, source)
    return Classifier(encoder, len(meta["classes"]))


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu") -> Classifier:
    """The classifier saved at ``path``, in eval mode, with its metadata as ``.info`` (nothing unpickled).

    Raises:
        FileNotFoundError: no such file.
        EncoderFileError: not a safetensors file, not a contrastkit classifier, or weights that do not fit.
    """
    from safetensors.torch import load_file

    meta = read_file_metadata(path, "classifier")
    if meta.get("format") != FORMAT:
        found = meta.get("format")
        hint = " (an encoder file: fine-tune it with `contrastkit finetune`)" if found == "contrastkit-encoder" else ""
        raise EncoderFileError(f"{path}: not a contrastkit classifier (format {found!r}){hint}")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise EncoderFileError(f"{path}: classifier format {meta['format_version']} is newer than this contrastkit")
    classifier = _build(meta, str(path))
    try:
        classifier.load_state_dict(load_file(str(path), device=str(device)), strict=True)
    except RuntimeError as e:
        raise EncoderFileError(f"{path}: weights do not fit the classifier: {str(e).splitlines()[0]}") from None
    classifier.info = meta
    return classifier.to(device).eval()
