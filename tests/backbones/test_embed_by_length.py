"""Length-sorted chunks give each text the embedding (and gradient) it gets in its own group's batch."""

import pytest
import torch

from contrastkit.backbones.embed_by_length import embed_by_length, encode_by_length
from contrastkit.data.tokenized_texts import TokenTable


@pytest.fixture(scope="module")
def groups(minilm, doc_pairs):
    pairs = doc_pairs[:6]
    texts = [[p["anchor"] for p in pairs], [p["positive"] for p in pairs], [p["negative"] for p in pairs]]
    table = TokenTable(minilm.tokenizer, minilm.max_length, [t for g in texts for t in g])
    return [table.batch(g) for g in texts]


def test_outputs_equal_one_call_per_group_and_cost_fewer_padded_tokens(minilm, groups):
    with torch.no_grad():
        sorted_out = embed_by_length(minilm, groups, chunk_size=6)
        plain = [minilm(g) for g in groups]
    for a, b in zip(sorted_out, plain, strict=True):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-4)
    lengths = torch.cat([g.attention_mask.sum(1) for g in groups]).sort(descending=True).values
    chunked = sum(int(lengths[i]) * len(lengths[i : i + 6]) for i in range(0, len(lengths), 6))
    padded = sum(g.input_ids.numel() for g in groups)
    assert chunked < padded


def test_gradients_equal_those_of_one_call_per_group(minilm, groups):
    weight = minilm.model.embeddings.word_embeddings.weight

    def grad(embed):
        minilm.zero_grad()
        out = embed()
        sum(((o * torch.arange(o.shape[1])).sum() * (k + 1)) for k, o in enumerate(out)).backward()
        return weight.grad.clone()

    sorted_grad = grad(lambda: embed_by_length(minilm, groups, chunk_size=4))
    plain_grad = grad(lambda: [minilm(g) for g in groups])
    minilm.zero_grad()
    assert (sorted_grad - plain_grad).norm() < 1e-5 * plain_grad.norm()  # float rounding only


def test_every_text_once_in_batches_of_similar_length():
    texts = ["a" * n for n in (50, 3, 17, 3, 90, 1, 8, 40, 12, 6, 30)]
    batches = []

    def encode(batch: list[str]) -> torch.Tensor:
        batches.append(batch)
        return torch.tensor([[float(len(t)), float(i)] for i, t in enumerate(batch)])  # (b, 2)

    out = torch.full((len(texts), 2), -1.0)
    for rows, z in encode_by_length(encode, texts, 4):
        out[rows] = z
    assert [len(b) for b in batches] == [4, 4, 3]
    assert out[:, 0].tolist() == [float(len(t)) for t in texts]  # each row's embedding is its own text's
    longest = [max(map(len, b)) for b in batches]
    assert longest == sorted(longest) and longest[0] == 6  # the short texts are never padded to the long ones
    with pytest.raises(ValueError, match="batch_size"):
        list(encode_by_length(encode, texts, 0))


def test_the_order_changes_nothing_but_the_padding(minilm):
    texts = ["a cat", "the reference manual of the Python language, its syntax and its semantics", "dog", "bread"]
    in_order = minilm(texts)  # (4, 384): one batch padded to the longest
    out = torch.empty_like(in_order)
    for rows, z in encode_by_length(minilm, texts, 2):
        out[rows] = z
    assert torch.allclose(out, in_order, atol=1e-5)
