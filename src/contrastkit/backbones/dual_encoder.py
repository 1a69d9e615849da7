"""An image tower and a text tower projected into one embedding space (CLIP-style dual encoder)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.backbones.sentence_transformer_encoder import SentenceTransformerEncoder

TEXT_ENCODERS = ("minilm", "transformer")  # built from a name: text-pairs' backbone.name, clip's method.text_encoder
# text towers whose text_config holds the whole model (architecture, tokenizer): written by import-encoder
IMPORTED_TEXT_ENCODERS: dict[str, type[nn.Module]] = {SentenceTransformerEncoder.name: SentenceTransformerEncoder}
MAX_CACHED_TEXTS = 50_000  # locked text tower: features of this many distinct strings are kept


def create_text_encoder(
    name: str,
    model_path: str | os.PathLike | None = None,
    max_length: int = 64,
    width: int = 256,
    layers: int = 4,
    heads: int = 4,
) -> nn.Module:
    """A text tower: ``"minilm"`` (pretrained all-MiniLM-L6-v2) or ``"transformer"`` (from scratch, MiniLM's
    tokenizer; ``width``/``layers``/``heads`` apply to it only). Its ``text_config`` holds these arguments."""
    if name == "minilm":
        from contrastkit.backbones.minilm_text_encoder import MiniLMTextEncoder

        encoder = MiniLMTextEncoder(model_path, max_length=max_length)
    elif name == "transformer":
        from contrastkit.backbones.text_transformer import TextTransformer

        encoder = TextTransformer(model_path, width=width, layers=layers, heads=heads, max_length=max_length)
    else:
        raise ValueError(f"text_encoder must be one of {', '.join(TEXT_ENCODERS)}, got {name!r}")
    path = None if model_path is None else str(model_path)
    # how to rebuild it (stored in encoder files)
    encoder.text_config = {
        "name": name,
        "model_path": path,
        "max_length": max_length,
        "width": width,
        "layers": layers,
        "heads": heads,
    }
    return encoder


def build_text_encoder(text_config: dict[str, Any]) -> nn.Module:
    """The (untrained) text tower a ``text_config`` describes (an encoder file's ``text_encoder`` entry): a named
    tower (:func:`create_text_encoder`) or an imported one (:data:`IMPORTED_TEXT_ENCODERS`, built from the
    config's other entries)."""
    config = dict(text_config)
    name = str(config.pop("name", None))
    imported = IMPORTED_TEXT_ENCODERS.get(name)
    return imported(**config) if imported is not None else create_text_encoder(name, **config)


class DualEncoder(nn.Module):
    """Image and text encoders, each followed by a linear projection to ``embed_dim`` (Radford et al. 2021, CLIP,
    arXiv 2103.00020). With ``lock_text`` the text tower is frozen and kept in eval mode, the locked-tower tuning of
    Zhai et al. 2022 (LiT, arXiv 2111.07991) applied to the text side: only its projection learns, and the
    features of each distinct string are computed once and cached.

    ``forward(images)`` returns the L2-normalised image embeddings (what ``contrastkit embed`` indexes, so text
    queries can search them); :meth:`encode_text` gives the matching text embeddings.

    Without a text projection (``project_text=False``) the image tower is projected straight into the text tower's
    own embedding space (``embed_dim`` = its ``feature_dim``): with a locked pretrained tower this keeps the
    similarities between class names the tower learnt, so classes never seen in training still land next to their
    semantic neighbours; a projection trained on a few distinct captions is free to fold them onto seen ones.

    Args:
        image_encoder: image backbone with ``feature_dim``.
        text_encoder: a module mapping a list of strings to ``(B, feature_dim)``.
        embed_dim: the shared embedding size.
        lock_text: freeze the text tower.
        project_text: learn a linear projection of the text features (False: use them as they are).
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        text_encoder: nn.Module,
        embed_dim: int = 256,
        lock_text: bool = False,
        project_text: bool = True,
    ) -> None:
        super().__init__()
        text_dim = int(text_encoder.feature_dim)
        if not project_text and embed_dim != text_dim:
            raise ValueError(
                f"without a text projection the embedding size is the text tower's: embed_dim must be {text_dim}, "
                f"got {embed_dim}"
            )
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.image_projection = nn.Linear(int(image_encoder.feature_dim), embed_dim, bias=False)
        self.text_projection = nn.Linear(text_dim, embed_dim, bias=False) if project_text else nn.Identity()
        self.project_text = bool(project_text)
        self.lock_text = bool(lock_text)
        self.feature_dim = int(embed_dim)
        self._text_cache: dict[str, Tensor] = {}
        if self.lock_text:
            for p in self.text_encoder.parameters():
                p.requires_grad_(False)
            self.text_encoder.eval()
        self.register_load_state_dict_pre_hook(lambda *args, **kwargs: self._text_cache.clear())

    def train(self, mode: bool = True) -> DualEncoder:
        super().train(mode)
        if self.lock_text:
            self.text_encoder.eval()  # no dropout in a frozen tower
        return self

    def text_features(self, texts: Sequence[str]) -> Tensor:
        """Text tower features ``(B, text feature_dim)``; cached per string when the tower is locked."""
        if not self.lock_text:
            return self.text_encoder(texts)
        device = self.image_projection.weight.device
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        if missing:
            if len(self._text_cache) + len(missing) > MAX_CACHED_TEXTS:
                self._text_cache.clear()
            with torch.no_grad():
                features = self.text_encoder(missing).float()  # (U, H)
            self._text_cache.update(zip(missing, features, strict=True))
        return torch.stack([self._text_cache[t] for t in texts]).to(device)  # (B, H)

    def encode_image(self, images: Tensor, normalize: bool = True) -> Tensor:
        """Image embeddings ``(B, embed_dim)``."""
        z = self.image_projection(self.image_encoder(images))  # (B, E)
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> Tensor:
        """Text embeddings ``(B, embed_dim)``."""
        z = self.text_projection(self.text_features(texts))  # (B, E)
        return F.normalize(z, dim=-1) if normalize else z

    def forward(self, images: Tensor) -> Tensor:
        return self.encode_image(images)
