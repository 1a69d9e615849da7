"""Texts tokenised once, before training: each batch is padded from stored token ids instead of re-tokenised."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor


def tokenizer_key(tokenizer: Any, max_length: int) -> tuple[str, int, int]:
    """What makes two tokenisations equal: the tokenizer's source, its vocabulary size and the truncation length."""
    return (str(getattr(tokenizer, "name_or_path", type(tokenizer).__name__)), len(tokenizer), int(max_length))


class TokenizedTexts(list):
    """A batch of strings (it is a ``list[str]``: anything that reads texts still can) that carries its token ids,
    ``input_ids`` and ``attention_mask`` ``(B, L)`` padded to its longest text. A text encoder whose tokenizer and
    ``max_length`` give ``key`` uses them as they are (``backbones.minilm_text_encoder.tokenize``); any other (a guide
    model with another vocabulary) tokenises the strings itself."""

    def __init__(self, texts: Iterable[str], input_ids: Tensor, attention_mask: Tensor, key: tuple) -> None:
        super().__init__(texts)
        if input_ids.shape != attention_mask.shape or input_ids.shape[0] != len(self):
            raise ValueError(f"{len(self)} texts with token ids {tuple(input_ids.shape)}: one row per text expected")
        self.input_ids, self.attention_mask, self.key = input_ids, attention_mask, key

    def __getitem__(self, index):
        """A text, or for a slice the sliced batch with its ids (padding trimmed to the slice's longest text), so
        that chunks of a batch (GradCache) keep their tokens."""
        if not isinstance(index, slice):
            return super().__getitem__(index)
        mask = self.attention_mask[index]  # (b, L)
        longest = int(mask.sum(1).max()) if len(mask) else 0
        return TokenizedTexts(super().__getitem__(index), self.input_ids[index, :longest], mask[:, :longest], self.key)


class TokenTable:
    """The token ids of every distinct text of a data set, computed once with one batched tokenizer call, and the
    padding of a batch from them.

    Args:
        tokenizer: a Hugging Face (fast) tokenizer.
        max_length: texts are truncated to this many tokens (special tokens included), as the encoder does.
        texts: all texts that batches will hold.
    """

    def __init__(self, tokenizer: Any, max_length: int, texts: Iterable[str]) -> None:
        distinct = list(dict.fromkeys(texts))
        ids = tokenizer(distinct, truncation=True, max_length=max_length)["input_ids"] if distinct else []
        self.ids = dict(zip(distinct, ids, strict=True))
        self.key = tokenizer_key(tokenizer, max_length)
        self.pad_id = int(tokenizer.pad_token_id or 0)

    def length(self, text: str) -> int:
        """Tokens of ``text`` after truncation."""
        return len(self.ids[text])

    def batch(self, texts: Sequence[str]) -> TokenizedTexts:
        """``texts`` with their ids padded (right, with the pad token) to the longest of them."""
        rows = [self.ids[t] for t in texts]
        longest = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)  # (B, L)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)  # (B, L)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, : len(row)] = 1
        return TokenizedTexts(texts, input_ids, attention_mask, self.key)


class TextColumns(list):
    """B ``(positive[, negative])`` tuples (it is that list) that also hold each column, tokenised, as
    :class:`TokenizedTexts`: ``columns[0]`` the B positives, ``columns[1]`` the B negatives when there are any."""

    def __init__(self, pairs: Iterable[tuple[str, ...]], columns: list[TokenizedTexts]) -> None:
        super().__init__(pairs)
        self.columns = columns

    def __getitem__(self, index):
        """A pair, or for a slice the sliced pairs with their sliced columns."""
        if not isinstance(index, slice):
            return super().__getitem__(index)
        return TextColumns(super().__getitem__(index), [column[index] for column in self.columns])
