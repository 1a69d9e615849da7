"""Hugging Face ``transformers`` image models as contrastkit encoders: vision encoders (ViT, DINOv2, ...) and CLIP.

The architecture is rebuilt from the ``config.json`` stored in the encoder file (``from_config``: no download,
no folder needed), and a CLIP model's tokenizer from the tokenizer files stored with it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.backbones.registry import register_backbone


def _config(config: dict[str, Any]):
    from transformers import AutoConfig

    config = dict(config)
    return AutoConfig.for_model(config.pop("model_type"), **config)


class HFVisionEncoder(nn.Module):
    """Pooled features ``(B, hidden_size)`` of a transformers vision model: its pooler output where it has one,
    else the first (class) token of the last hidden state."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        from transformers import AutoModel

        self.model = AutoModel.from_config(_config(config))
        self.feature_dim = int(self.model.config.hidden_size)

    def forward(self, images: Tensor) -> Tensor:
        out = self.model(pixel_values=images)
        pooled = getattr(out, "pooler_output", None)
        return pooled if pooled is not None else out.last_hidden_state[:, 0]  # (B, D)


@register_backbone
def hf_vision(in_chans: int = 3, small_input: bool = False, config: dict[str, Any] | None = None) -> nn.Module:
    """A transformers vision model from its config dict (``contrastkit import-encoder hf:FOLDER``)."""
    if config is None:
        raise ValueError("hf_vision needs the model's config (the dict of its config.json)")
    if small_input:
        raise ValueError("transformers models are imported as published: no small-input stem")
    return HFVisionEncoder(config)


class HFCLIPEncoder(nn.Module):
    """A transformers ``CLIPModel``: ``forward(images)`` L2-normalised image embeddings, :meth:`encode_text` text.

    Args:
        config: the dict of the model's ``config.json``.
        tokenizer_files: file name -> text of the tokenizer files (``vocab.json``, ``merges.txt``, ...).
    """

    def __init__(self, config: dict[str, Any], tokenizer_files: dict[str, str]) -> None:
        super().__init__()
        from transformers import AutoTokenizer, CLIPModel

        self.model = CLIPModel(_config(config))
        with tempfile.TemporaryDirectory() as folder:
            for name, text in tokenizer_files.items():
                (Path(folder) / name).write_text(text, encoding="utf-8")
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.feature_dim = int(self.model.config.projection_dim)

    @staticmethod
    def _tensor(out: Any) -> Tensor:
        return out if isinstance(out, Tensor) else out.pooler_output  # transformers 5 returns an output object

    def encode_image(self, images: Tensor, normalize: bool = True) -> Tensor:
        z = self._tensor(self.model.get_image_features(pixel_values=images))  # (B, E)
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> Tensor:
        device = next(self.parameters()).device
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(device)
        z = self._tensor(self.model.get_text_features(**tokens))  # (B, E)
        return F.normalize(z, dim=-1) if normalize else z

    def forward(self, images: Tensor) -> Tensor:
        return self.encode_image(images)
