"""What :func:`contrastkit.load_encoder` returns: an encoder typed by what it can embed.

``ImageEncoder`` (``encode_image``, ``preprocess``), ``TextEncoder`` (``encode_text``), ``ImageTextEncoder`` (both:
a CLIP-style model) and ``SequenceEncoder`` (``encode_sequence``, a CPC run's frames + context). Each wraps the
module whose weights the encoder file holds (``encoder.model``: its state dict keys are the file's), with the
file's metadata (``encoder_info``) and path (``encoder_path``). Code asks ``isinstance(encoder, TextEncoder)``,
never the metadata's ``kind`` string; the model of open_clip (``model`` + ``preprocess``) is the one followed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.data.image_preprocess import ImagePreprocess


class Encoder(nn.Module):
    """Base of the typed encoders: ``model`` (the file's module), ``encoder_info``, ``encoder_path``,
    ``feature_dim``; ``forward`` is the model's own."""

    kind: ClassVar[str] = ""  # the encoder file's ``kind`` this type reads

    def __init__(self, model: nn.Module, info: dict[str, Any], path: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.encoder_info = dict(info)
        self.encoder_path = path
        self.feature_dim = int(model.feature_dim)

    def forward(self, x: Any) -> Tensor:
        return self.model(x)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, feature_dim={self.feature_dim}, path={self.encoder_path!r}"


class ImageEncoder(Encoder):
    """Images ``(B, C, S, S)``, prepared by ``preprocess``, to features ``(B, D)``."""

    kind = "image"

    def __init__(self, model: nn.Module, info: dict[str, Any], path: str | None = None) -> None:
        super().__init__(model, info, path)
        self.preprocess = ImagePreprocess.from_info(info)

    @property
    def image_model(self) -> nn.Module:
        """The module that maps prepared images to this encoder's image features (what fine-tuning trains)."""
        return self.model

    def encode_image(self, images: Tensor, normalize: bool = True) -> Tensor:
        """Features ``(B, D)`` of prepared images ``(B, C, S, S)``; L2-normalised unless ``normalize=False``."""
        z = self.model(images)  # (B, D)
        return F.normalize(z, dim=-1) if normalize else z


class TextEncoder(Encoder):
    """Strings to embeddings ``(B, D)`` (tokenisation inside)."""

    kind = "text"

    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> Tensor:
        """Embeddings ``(B, D)`` of ``texts``; L2-normalised unless ``normalize=False``."""
        z = self.model(list(texts))  # (B, D)
        return F.normalize(z, dim=-1) if normalize else z


class ImageTextEncoder(ImageEncoder, TextEncoder):
    """An image tower and a text tower in one embedding space (CLIP / LiT): ``encode_image`` and ``encode_text``
    give comparable embeddings, so zero-shot classification and text-to-image search work. It is both an
    ``ImageEncoder`` and a ``TextEncoder``."""

    kind = "dual"

    @property
    def image_model(self) -> nn.Module:
        """Prepared images to normalised image embeddings ``(B, E)``: the model itself (its forward)."""
        return self.model

    def encode_image(self, images: Tensor, normalize: bool = True) -> Tensor:
        return self.model.encode_image(images, normalize=normalize)  # (B, E)

    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> Tensor:
        """Embeddings ``(B, E)`` of ``texts`` in the image embeddings' space."""
        return self.model.encode_text(list(texts), normalize=normalize)  # (B, E)


class SequenceEncoder(Encoder):
    """1-D sequences ``(B, C, L)`` (a CPC run's frame encoder and context network) to features ``(B, D)``."""

    kind = "sequence"

    def encode_sequence(self, x: Tensor, normalize: bool = True) -> Tensor:
        """Features ``(B, D)`` of sequences ``(B, C, L)``; L2-normalised unless ``normalize=False``."""
        z = self.model(x)  # (B, D)
        return F.normalize(z, dim=-1) if normalize else z


ENCODER_TYPES: dict[str, type[Encoder]] = {
    t.kind: t for t in (ImageEncoder, TextEncoder, ImageTextEncoder, SequenceEncoder)
}


def typed_encoder(model: nn.Module, info: dict[str, Any], path: str | None = None) -> Encoder:
    """``model`` (built and loaded from an encoder file) wrapped in the type its metadata's ``kind`` names."""
    return ENCODER_TYPES[info.get("kind", "image")](model, info, path)
