"""A sentence-transformers model (transformer, pooling, optional normalisation) as a text tower, rebuilt from what its
encoder file stores: the ``config.json`` (``AutoModel.from_config``: no download, no folder needed) and the tokenizer
files (``contrastkit import-encoder sentence-transformers:FOLDER`` writes them)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit.backbones.minilm_text_encoder import tokenize

# sentence-transformers' pooling modes, in the order it concatenates them when several are on
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")


def pool_tokens(hidden: Tensor, attention_mask: Tensor, modes: Sequence[str]) -> Tensor:
    """Token features pooled as sentence-transformers' ``Pooling`` does, one block per mode, concatenated:
    ``(B, L, H), (B, L) -> (B, len(modes) * H)``.

    ``cls`` the first real token, ``max`` the largest value of each feature over the real tokens, ``mean`` their
    mean (Reimers and Gurevych 2019, Sentence-BERT, arXiv 1908.10084), ``mean_sqrt_len_tokens`` their sum over the
    square root of their number, ``weightedmean`` their mean weighted by position (Muennighoff 2022, SGPT, arXiv
    2202.08904), ``lasttoken`` the last real token.
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    first = attention_mask.to(torch.int).argmax(dim=1)  # (B,) the first real token (0 unless left-padded)
    blocks: list[Tensor] = []
    for mode in modes:
        if mode == "cls":
            blocks.append(hidden[torch.arange(len(hidden), device=hidden.device), first])  # (B, H)
        elif mode == "max":
            blocks.append(hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values)  # (B, H)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            count = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
            total = (hidden * mask).sum(dim=1)  # (B, H)
            blocks.append(total / (count if mode == "mean" else count.sqrt()))  # (B, H)
        elif mode == "weightedmean":
            positions = torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype)  # (L,)
            weights = mask * (positions.view(1, -1, 1) - first.view(-1, 1, 1).to(hidden.dtype))  # (B, L, 1)
            blocks.append((hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9))  # (B, H)
        elif mode == "lasttoken":
            last = attention_mask.shape[1] - 1 - attention_mask.flip(1).to(torch.int).argmax(dim=1)  # (B,)
            blocks.append(hidden[torch.arange(len(hidden), device=hidden.device), last])  # (B, H)
        else:
            raise ValueError(f"unknown pooling mode {mode!r} (one of {', '.join(POOLING_MODES)})")
    return torch.cat(blocks, dim=-1)


class SentenceTransformerEncoder(nn.Module):
    """A sentence-transformers model: a transformers encoder, then pooling of its token features (Reimers and
    Gurevych 2019, Sentence-BERT, arXiv 1908.10084). ``forward`` takes strings and returns the pooled features
    ``(B, feature_dim)`` before any normalisation: what sentence-transformers' ``encode`` gives without its
    ``Normalize`` module (``TextEncoder.encode_text`` normalises by default, as that module does; ``normalize``
    records whether the model has it).

    Like :class:`~contrastkit.backbones.minilm_text_encoder.MiniLMTextEncoder` it has ``tokenizer``,
    ``max_length`` and ``feature_dim`` and takes texts tokenised ahead
    (:class:`~contrastkit.data.tokenized_texts.TokenizedTexts`), so text-pairs training, ``embed_by_length``,
    mining and ``method.guide=`` use it as they use MiniLM.

    Args:
        hf_config: the dict of the model's ``config.json``.
        tokenizer_files: file name -> text of the tokenizer files (``tokenizer.json``, ``tokenizer_config.json``,
            ...).
        pooling: pooling modes (:data:`POOLING_MODES`), concatenated in this order.
        normalize: the model ends with sentence-transformers' ``Normalize`` (its embeddings are L2-normalised).
        do_lower_case: texts are lower-cased before tokenisation (sentence-transformers' ``do_lower_case``).
        max_length: tokens per text (its ``max_seq_length``; longer texts are truncated).
        pooler: keep the transformer's pooler layer (its weights are in the file; unused by token pooling).
    """

    name = "sentence_transformer"  # the text_config name that rebuilds it

    def __init__(
        self,
        hf_config: dict[str, Any],
        tokenizer_files: dict[str, str],
        pooling: Sequence[str] = ("mean",),
        normalize: bool = True,
        do_lower_case: bool = False,
        max_length: int = 256,
        pooler: bool = True,
    ) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        from contrastkit.backbones.hf_encoder import _config

        if not pooling or any(mode not in POOLING_MODES for mode in pooling):
            raise ValueError(f"pooling must be modes among {', '.join(POOLING_MODES)}, got {list(pooling)}")
        self.model = AutoModel.from_config(_config(hf_config))
        if not pooler and getattr(self.model, "pooler", None) is not None:
            self.model.pooler = None  # a checkpoint saved without it: token pooling never reads it
        with tempfile.TemporaryDirectory() as folder:
            for file_name, text in tokenizer_files.items():
                (Path(folder) / file_name).write_text(text, encoding="utf-8")
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if do_lower_case:
            _lower_case(self.tokenizer)
        # a name that identifies the tokenisation (TokenizedTexts compare it), not the temporary folder it came from
        digest = hashlib.sha256(json.dumps([tokenizer_files, do_lower_case], sort_keys=True).encode("utf-8"))
        self.tokenizer.name_or_path = f"sentence-transformer-tokenizer-{digest.hexdigest()[:16]}"
        self.pooling = tuple(pooling)
        self.normalize = bool(normalize)
        self.max_length = int(max_length)
        self.feature_dim = int(self.model.config.hidden_size) * len(self.pooling)
        # how to rebuild it (stored in encoder files)
        self.text_config = {
            "name": self.name,
            "hf_config": dict(hf_config),
            "tokenizer_files": dict(tokenizer_files),
            "pooling": list(self.pooling),
            "normalize": self.normalize,
            "do_lower_case": bool(do_lower_case),
            "max_length": self.max_length,
            "pooler": bool(pooler),
        }

    def forward(self, texts: Sequence[str]) -> Tensor:
        device = next(self.model.parameters()).device
        tokens = tokenize(self.tokenizer, texts, self.max_length, device)
        hidden = self.model(**tokens).last_hidden_state  # (B, L, H)
        return pool_tokens(hidden, tokens["attention_mask"], self.pooling)  # (B, P * H)


def _lower_case(tokenizer: Any) -> None:
    """Lower-case texts inside the (fast) tokenizer, before its own normalisation, as sentence-transformers does for
    ``do_lower_case``: every user of the tokenizer (``TokenTable`` too) then sees the same ids."""
    from tokenizers.normalizers import Lowercase
    from tokenizers.normalizers import Sequence as NormalizerSequence

    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("do_lower_case needs a fast tokenizer (a tokenizer.json)")
    normalizer = tokenizer.backend_tokenizer.normalizer
    steps = [Lowercase()]  # (lower-casing twice changes nothing)
    if isinstance(normalizer, NormalizerSequence):
        steps += list(normalizer)
    elif normalizer is not None:
        steps.append(normalizer)
    tokenizer.backend_tokenizer.normalizer = NormalizerSequence(steps)
