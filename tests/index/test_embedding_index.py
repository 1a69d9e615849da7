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


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_k_is_clamped_to_the_index_size(kind):
    import time
    import tracemalloc

    rng = np.random.default_rng(4)
    gallery, queries = rng.normal(size=(300, 16)), rng.normal(size=(2, 16))
    index = EmbeddingIndex(16, kind=kind, nlist=4, nprobe=4)
    index.add(gallery)
    tracemalloc.start()
    start = time.perf_counter()
    huge = index.search(queries, k=10**9)  # unclamped: 12 GB of scores and ids per query
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert huge.ids.shape == huge.scores.shape == (2, 300) and seconds < 5 and peak < 10 * 2**20
    ref_scores, ref_ids = brute_force(gallery, queries, 300)  # every row, best first
    if kind == "exact":
        np.testing.assert_array_equal(huge.ids, ref_ids)
        np.testing.assert_allclose(huge.scores, ref_scores, atol=1e-5)
    for ids in huge.ids:  # an approximate index may miss a few rows (id -1), never repeat one
        found = ids[ids >= 0]
        assert len(set(found)) == len(found) >= 270
    assert index.search(queries, k=300).ids.shape == (2, 300) and index.search(queries, k=7).ids.shape == (2, 7)
    for bad in (0, -1, 2.5, "3", True):
        with pytest.raises(ValueError, match="k must be"):
            index.search(queries, k=bad)


def test_k_is_clamped_when_reranking_from_the_vectors():
    import faiss

    class Vectors:  # what attach_vectors reads: len, dim and rows by position
        def __init__(self, x: np.ndarray) -> None:
            self.x, self.dim = x, x.shape[1]

        def __len__(self) -> int:
            return len(self.x)

        def take(self, rows: np.ndarray) -> np.ndarray:
            return self.x[rows]

    rng = np.random.default_rng(5)
    gallery = rng.normal(size=(300, 16)).astype(np.float32)
    index = EmbeddingIndex(16, kind="ivfpq", nlist=4, nprobe=4, pq_m=4)
    faiss.downcast_index(faiss.extract_index_ivf(index.index)).do_polysemous_training = False  # 14 s -> 0.3 s
    index.train(gallery)
    index.add(gallery)
    index.attach_vectors(Vectors(gallery), rerank=10)
    found = index.search(gallery[:2], k=10**9)  # k x rerank candidates, clamped too
    assert found.ids.shape == (2, 300) and (found.ids[:, 0] == [0, 1]).all()
    _, ref_ids = brute_force(gallery, gallery[:2], 300)
    np.testing.assert_array_equal(found.ids, ref_ids)  # every row, ordered by the exact vectors
