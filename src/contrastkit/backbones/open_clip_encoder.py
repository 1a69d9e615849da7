"""An open_clip model (image and text towers) as a contrastkit image-text encoder.

Cherti et al. 2023, "Reproducible scaling laws for contrastive language-image learning" (open_clip); Radford et
al. 2021, CLIP (arXiv 2103.00020). The architecture is rebuilt from the model config stored in the encoder file
(through open_clip's ``local-dir:`` schema, so no download and no dependence on open_clip's list of built-in
names), and text goes through open_clip's own tokenizer for that config.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn


def _open_clip():
    try:
        import open_clip
    except ImportError:
        raise ImportError(
            "this encoder needs open_clip: pip install 'contrastkit[import]' (or pip install open_clip_torch)"
        ) from None
    return open_clip


class OpenCLIPEncoder(nn.Module):
    """``forward(images)``: L2-normalised image embeddings; :meth:`encode_text`: the matching text embeddings.

    Args:
        model_cfg: open_clip's model config (``embed_dim``, ``vision_cfg``, ``text_cfg``, ...).
        preprocess_cfg: open_clip's preprocessing config (``size``, ``mean``, ``std``, ``interpolation``, ...).
    """

    def __init__(self, model_cfg: dict[str, Any], preprocess_cfg: dict[str, Any] | None = None) -> None:
        super().__init__()
        open_clip = _open_clip()
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # open_clip warns that the folder has no weights: they are loaded after
        try:
            with tempfile.TemporaryDirectory() as folder:
                config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg or {}}
                (Path(folder) / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")
                self.clip = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
                self.tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
        finally:
            root.setLevel(level)
        self.feature_dim = int(model_cfg["embed_dim"])

    def encode_image(self, images: Tensor, normalize: bool = True) -> Tensor:
        z = self.clip.encode_image(images)  # (B, E)
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> Tensor:
        device = next(self.parameters()).device
        z = self.clip.encode_text(self.tokenizer(list(texts)).to(device))  # (B, E)
        return F.normalize(z, dim=-1) if normalize else z

    def forward(self, images: Tensor) -> Tensor:
        return self.encode_image(images)
