"""EmbeddingIndex against a float64 brute-force cosine search, approximate recall, persistence and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.index import EmbeddingIndex


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(gallery, queries, k):
    sim = unit(queries.astype(np.float64)) @ unit(gallery.astype(np.float64)).T
    ids = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sim, ids, axis=1), ids


def test_exact_search_equals_brute_force():
    rng = np.random.default_rng(0)
    gallery, queries = rng.normal(size=(1000, 32)), rng.normal(size=(50, 32))
    index = EmbeddingIndex(32)
    index.add(gallery[:600])
    index.add(gallery[600:])  # ids continue across adds
    result = index.search(queries, k=10)
    ref_scores, ref_ids = brute_force(gallery, queries, 10)
    np.testing.assert_array_equal(result.ids, ref_ids)
    np.testing.assert_allclose(result.scores, ref_scores, atol=1e-5)


@pytest.mark.parametrize(("kind", "params"), [("ivf", {"nlist": 64, "nprobe": 16}), ("hnsw", {"ef_search": 64})])
def test_approximate_indexes_reach_high_recall(kind, params):
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(50, 64))
    gallery = centres[rng.integers(0, 50, 20000)] + 0.5 * rng.normal(size=(20000, 64))
    queries = centres[rng.integers(0, 50, 200)] + 0.5 * rng.normal(size=(200, 64))
    index = EmbeddingIndex(64, kind=kind, **params)
    index.add(gallery)
    found = index.search(queries, k=10).ids
    _, exact = brute_force(gallery, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)])
    assert recall >= 0.9


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_save_and_load_round_trip(tmp_path, kind):
    rng = np.random.default_rng(2)
    gallery = rng.normal(size=(300, 16)).astype(np.float32)
    index = EmbeddingIndex(16, kind=kind, nlist=8, nprobe=8)
    index.add(gallery)
    before = index.search(gallery[:5], k=3)
    index.save(tmp_path / "gallery.faiss")
    loaded = EmbeddingIndex.load(tmp_path / "gallery.faiss")
    after = loaded.search(gallery[:5], k=3)
    assert len(loaded) == 300 and loaded.kind == kind
    np.testing.assert_array_equal(before.ids, after.ids)
    assert (after.ids[:, 0] == np.arange(5)).all()  # each vector finds itself first


def test_near_duplicates_groups_copies():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(100, 24))
    copies = np.vstack([base, base[[3, 3, 40]] + 1e-4 * rng.normal(size=(3, 24))])  # rows 100, 101 ~ 3; 102 ~ 40
    index = EmbeddingIndex(24)
    index.add(copies)
    assert index.near_duplicates(threshold=0.99) == [[3, 100, 101], [40, 102]]


def test_bad_input(tmp_path):
    index = EmbeddingIndex(8)
    with pytest.raises(ValueError, match="the index is empty"):
        index.search(np.ones((1, 8)))
    with pytest.raises(ValueError, match="queries has dimension 4 but the index holds 8-dimensional"):
        index.add(np.ones((3, 8)))
        index.search(np.ones((2, 4)))
    with pytest.raises(ValueError, match="embeddings has NaN"):
        index.add(np.full((2, 8), np.nan))
    with pytest.raises(ValueError, match="kind must be one of exact, ivf, hnsw"):
        EmbeddingIndex(8, kind="lsh")
    with pytest.raises(ValueError, match="needs at least that many vectors"):
        EmbeddingIndex(8, kind="ivf", nlist=64).add(np.ones((10, 8)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        EmbeddingIndex.load(tmp_path / "missing.faiss")
    (tmp_path / "junk.faiss").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a contrastkit index"):
        EmbeddingIndex.load(tmp_path / "junk.faiss")
