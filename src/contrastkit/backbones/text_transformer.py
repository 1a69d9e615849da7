"""A small text Transformer trained from scratch, with all-MiniLM-L6-v2's tokenizer."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from contrastkit.backbones.minilm_text_encoder import load_tokenizer, mean_pool, tokenize


class TextTransformer(nn.Module):
    """A pre-norm Transformer encoder (Vaswani et al. 2017, arXiv 1706.03762) over word pieces, mean-pooled, as
    the text tower of CLIP trained from scratch (Radford et al. 2021, arXiv 2103.00020, use a causal 12-layer one;
    a small bidirectional one suffices for short captions).

    Args:
        model_path: the folder whose tokenizer is used (default: all-MiniLM-L6-v2's, see ``minilm_path``).
        width: token feature size.
        layers: Transformer blocks.
        heads: attention heads per block.
        max_length: tokens per text (positions learnt up to this).
        dropout: dropout in the blocks.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        width: int = 256,
        layers: int = 4,
        heads: int = 4,
        max_length: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        self.tokenizer = load_tokenizer(model_path)
        self.max_length = int(max_length)
        self.token_embedding = nn.Embedding(len(self.tokenizer), width)
        self.position_embedding = nn.Parameter(torch.zeros(max_length, width))
        block = nn.TransformerEncoderLayer(
            width,
            heads,
            dim_feedforward=4 * width,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.feature_dim = int(width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.01)

    def forward(self, texts: Sequence[str]) -> Tensor:
        tokens = tokenize(self.tokenizer, texts, self.max_length, self.position_embedding.device)
        ids, mask = tokens["input_ids"], tokens["attention_mask"]  # (B, L) each
        x = self.token_embedding(ids) + self.position_embedding[: ids.shape[1]]  # (B, L, W)
        x = self.blocks(x, src_key_padding_mask=mask == 0)  # (B, L, W)
        return mean_pool(self.norm(x), mask)  # (B, W)
