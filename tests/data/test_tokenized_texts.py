"""Texts tokenised once: the same token ids and the same embeddings as tokenising each batch."""

import torch

from contrastkit.backbones.minilm_text_encoder import tokenize
from contrastkit.data.tokenized_texts import TextColumns, TokenTable

TEXTS = ["a short one", "a much longer text " * 80, "medium length text about sorting lists", "x"]


def test_padded_ids_equal_the_tokenizers_own_and_embeddings_are_unchanged(minilm):
    table = TokenTable(minilm.tokenizer, minilm.max_length, TEXTS + TEXTS[:2])  # repeats tokenised once
    assert len(table.ids) == len(TEXTS)
    batch = table.batch(TEXTS)
    reference = minilm.tokenizer(
        TEXTS, padding=True, truncation=True, max_length=minilm.max_length, return_tensors="pt"
    )
    assert torch.equal(batch.input_ids, reference["input_ids"])
    assert torch.equal(batch.attention_mask, reference["attention_mask"])
    assert batch.input_ids.shape[1] == minilm.max_length  # the long text truncated as the encoder does
    with torch.no_grad():
        assert torch.allclose(minilm(batch), minilm(list(TEXTS)), atol=1e-5)
    # a slice keeps its ids, padding trimmed to its own longest text
    part = batch[2:4]
    assert list(part) == TEXTS[2:4] and part.input_ids.shape[1] == max(table.length(t) for t in TEXTS[2:4])
    with torch.no_grad():
        assert torch.allclose(minilm(part), minilm(TEXTS[2:4]), atol=1e-5)
    assert batch[0] == TEXTS[0]


def test_another_tokenizer_or_length_tokenises_the_strings_itself(minilm):
    table = TokenTable(minilm.tokenizer, 8, TEXTS)  # truncated at 8 tokens: not what the encoder uses
    batch = table.batch(TEXTS)
    tokens = tokenize(minilm.tokenizer, batch, minilm.max_length, torch.device("cpu"))
    assert tokens["input_ids"].shape[1] == minilm.max_length and batch.input_ids.shape[1] == 8


def test_columns_of_pairs_slice_together():
    class Words:  # a whitespace tokenizer with the interface TokenTable uses
        name_or_path, pad_token_id = "words", 0

        def __len__(self):
            return 100

        def __call__(self, texts, truncation, max_length):
            return {"input_ids": [[len(w) for w in t.split()][:max_length] for t in texts]}

    pairs = [("p one", "n one two"), ("p two three", "n")]
    table = TokenTable(Words(), 16, [t for p in pairs for t in p])
    columns = TextColumns(pairs, [table.batch([p for p, _ in pairs]), table.batch([n for _, n in pairs])])
    assert columns[1] == pairs[1] and list(columns) == pairs
    tail = columns[1:]
    assert list(tail) == pairs[1:] and tail.columns[0].input_ids.tolist() == [[1, 3, 5]]
    assert tail.columns[1].input_ids.tolist() == [[1]]
