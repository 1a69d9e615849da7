"""QueryBatcher: concurrent queries embedded together give each caller the embedding it gets alone (texts of very
different lengths padded in one batch included), a failing query fails alone, max_batch=1 never batches."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from contrastkit.index.query_batcher import QueryBatcher

WORDS = "the quick brown fox jumps over a lazy dog while reading files line by line in spring".split()


def texts_of_many_lengths(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=int(length))) for length in rng.integers(1, 120, n)]


async def concurrently(batcher: QueryBatcher, items: list) -> list[np.ndarray]:
    return await asyncio.gather(*(batcher.embed(item) for item in items))


def test_batched_texts_equal_texts_embedded_alone(minilm):
    texts = texts_of_many_lengths(40)
    lengths = [len(t.split()) for t in texts]
    assert max(lengths) > 20 * min(lengths)  # one batch pads short texts to a long one
    batcher = QueryBatcher(lambda batch: minilm(list(batch)), max_batch=16)
    batched = np.stack(asyncio.run(concurrently(batcher, texts)))  # (40, D)
    with torch.no_grad():
        alone = np.concatenate([minilm([t]).numpy() for t in texts])  # (40, D), one call each
    assert max(batcher.batch_sizes) == 16 and sum(batcher.batch_sizes) == 40  # batched for real
    np.testing.assert_allclose(batched, alone, atol=1e-5, rtol=0)


def test_batched_images_equal_images_embedded_alone():
    from contrastkit.backbones import create_backbone

    torch.manual_seed(0)
    model = create_backbone("small_cnn", in_chans=1, widths=(4, 8, 16)).eval()
    images = list(torch.rand(10, 1, 12, 12))
    batcher = QueryBatcher(lambda batch: model(torch.stack(list(batch))), max_batch=64)
    batched = np.stack(asyncio.run(concurrently(batcher, images)))  # (10, D)
    with torch.no_grad():
        alone = np.concatenate([model(image[None]).numpy() for image in images])  # (10, D)
    assert batcher.batch_sizes == [10]
    np.testing.assert_allclose(batched, alone, atol=1e-5, rtol=0)


def test_a_failing_query_fails_alone_and_max_batch_one_never_batches():
    def encode(batch):
        if "bad" in batch:
            raise RuntimeError("cannot embed 'bad'")
        return torch.tensor([[float(len(item)), 1.0] for item in batch])  # (B, 2)

    batcher = QueryBatcher(encode, max_batch=8)

    async def run():
        return await asyncio.gather(*(batcher.embed(x) for x in ["a", "bad", "ccc"]), return_exceptions=True)

    first, failed, third = asyncio.run(run())
    assert isinstance(failed, RuntimeError) and "cannot embed" in str(failed)
    np.testing.assert_array_equal(first, [1.0, 1.0])
    np.testing.assert_array_equal(third, [3.0, 1.0])
    one = QueryBatcher(encode, max_batch=1)
    rows = asyncio.run(concurrently(one, ["ab", "abcd", "a"]))
    assert one.batch_sizes == [1, 1, 1] and [r[0] for r in rows] == [2.0, 4.0, 1.0]
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        QueryBatcher(encode, max_batch=0)
