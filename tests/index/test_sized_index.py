"""Indexes sized to memory: the plan's arithmetic, exact neighbours streamed over chunks, and recall recorded with
the index equal to a recomputation written here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from contrastkit.cli.main import main
from contrastkit.index.embedding_index import EmbeddingIndex
from contrastkit.index.embedding_shards import Embeddings
from contrastkit.index.search import load_index
from contrastkit.index.sized_index import exact_neighbours, parse_memory, plan_index

GiB = 2**30


def test_memory_sizes_parse_and_nonsense_is_refused():
    assert parse_memory("2GB") == parse_memory("2GiB") == 2 * GiB
    assert parse_memory("500mb") == 500 * 2**20 and parse_memory("1.5G") == int(1.5 * GiB) and parse_memory("77") == 77
    with pytest.raises(ValueError, match="--max-memory: expected a size like 2GB"):
        parse_memory("lots")


def test_the_plan_takes_the_most_exact_index_that_fits():
    assert plan_index(50_000, 128, 2 * GiB).kind == "exact"
    assert plan_index(200_000, 128, 2 * GiB).kind == "hnsw"
    assert plan_index(500_000, 128, 2 * GiB).kind == "ivf"  # a graph over more takes too long to build
    assert plan_index(5_000_000, 128, 8 * GiB).kind == "ivf"  # 2.6 GB of vectors fit, a graph is too slow to build
    big = plan_index(10_000_000, 128, 2 * GiB)
    assert big.kind == "ivfpq" and big.pq_m == 64 and big.index_bytes <= 2 * GiB - 600 * 2**20
    assert plan_index(10_000_000, 128, int(1.2 * GiB)).pq_m < 64  # fewer bytes per vector for less memory
    with pytest.raises(ValueError, match="too small for 100,000,000 x 128 vectors"):
        plan_index(100_000_000, 128, 2 * GiB)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """3,000 clustered 16-d vectors as `contrastkit embed` writes them."""
    folder = tmp_path_factory.mktemp("sized")
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((30, 16))
    x = (centres[rng.integers(0, 30, 3000)] + 0.3 * rng.standard_normal((3000, 16))).astype(np.float32)
    np.save(folder / "embeddings.npy", x)
    (folder / "ids.txt").write_text("".join(f"v{i}\n" for i in range(3000)))
    (folder / "embed.json").write_text(json.dumps({"rows": 3000, "dim": 16, "dtype": "float32", "skipped": []}))
    return folder, x


def brute_force(x: np.ndarray, rows: np.ndarray, k: int = 10) -> np.ndarray:
    n = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = n[rows] @ n.T
    s[np.arange(len(rows)), rows] = -np.inf
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def test_exact_neighbours_streamed_over_chunks_equal_brute_force(collection):
    folder, x = collection
    rows = np.array([0, 17, 2999, 1500])
    embeddings = Embeddings(folder)
    embeddings.chunks = lambda size=700, chunks=embeddings.chunks: chunks(700)  # several chunks
    found = exact_neighbours(embeddings, x[rows], rows)
    expected = brute_force(x, rows)
    assert [set(f) for f in found] == [set(e) for e in expected]


@pytest.mark.parametrize("kind", ["ivf", "ivfpq", "hnsw"])
def test_recorded_recall_is_the_recall_of_the_built_index(collection, tmp_path, kind, capsys):
    folder, x = collection
    out = tmp_path / f"{kind}.faiss"
    assert main(["index", "build", str(folder), "--out", str(out), "--kind", kind, "--max-query-ms", "1000"]) == 0
    assert "recall@10" in capsys.readouterr().out
    index = load_index(out)
    quality = index.quality
    assert quality["queries"] == 1000 and 0.0 < quality["recall_at_10"] <= 1.0
    # recompute: the same 1,000 held-out rows, the index's top 10 without the row itself vs brute force
    from contrastkit.index.sized_index import sample_rows

    rows, q = sample_rows(Embeddings(folder), 1000, seed=1)
    found = index.search(q, 11).ids
    truth = brute_force(x, rows)
    recall = np.mean([len(set(f[f != r][:10]) & set(t)) / 10 for f, r, t in zip(found, rows, truth, strict=True)])
    assert quality["recall_at_10"] == pytest.approx(recall, abs=1e-9)
    efforts = [t["effort"] for t in quality["tried"]]
    assert efforts == sorted(efforts) and quality["effort"] in efforts
    assert quality["recall_at_10"] == max(t["recall_at_10"] for t in quality["tried"])  # 1 s/query: any effort
    assert quality["recall_at_10"] > 0.9
    if kind == "ivfpq":  # re-ranked from the vectors on disk; the codes alone recorded beside it
        index.params["rerank"] = 0
        found = index.search(q, 11).ids
        codes = np.mean([len(set(f[f != r][:10]) & set(t)) / 10 for f, r, t in zip(found, rows, truth, strict=True)])
        assert quality["recall_at_10_codes_only"] == pytest.approx(codes, abs=1e-9)
        assert quality["recall_at_10"] > codes


def test_reranking_returns_exact_similarities_and_with_every_candidate_equals_brute_force(collection, tmp_path):
    folder, x = collection
    vectors = Embeddings(folder)
    index = EmbeddingIndex(16, kind="ivfpq", nlist=8, pq_m=4)
    index.train(x)
    index.add(x)
    index.set_search_effort(8)  # every cell
    with pytest.raises(ValueError, match="not the collection this index was built from"):
        index.attach_vectors(_Fake(2999, 16), 10)
    index.attach_vectors(vectors, 300)  # 10 x 300 candidates = the whole collection
    rows = np.array([0, 5, 2999])
    result = index.search(x[rows], 10)
    n = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    expected = np.argsort(-(n[rows] @ n.T), axis=1, kind="stable")[:, :10]
    assert [set(r) for r in result.ids] == [set(e) for e in expected]
    exact = np.take_along_axis(n[rows] @ n.T, result.ids, 1)  # float64 reference of the returned scores
    np.testing.assert_allclose(result.scores, exact, rtol=0, atol=1e-5)
    assert (np.diff(result.scores, axis=1) <= 0).all()
    with pytest.raises(ValueError, match="re-ranking is for compressed"):
        EmbeddingIndex(16, kind="ivf", nlist=8).attach_vectors(vectors, 10)


class _Fake:
    def __init__(self, n: int, dim: int) -> None:
        self.n, self.dim = n, dim

    def __len__(self) -> int:
        return self.n


def test_an_index_whose_vectors_moved_searches_its_codes_and_says_so(collection, tmp_path, capsys):
    import shutil

    folder, x = collection
    moved = tmp_path / "vectors"
    shutil.copytree(folder, moved)
    out = tmp_path / "pq.faiss"
    assert main(["index", "build", str(moved), "--out", str(out), "--kind", "ivfpq"]) == 0
    assert "re-ranked from the vectors on disk; codes only:" in capsys.readouterr().out
    assert load_index(out).vectors is not None
    shutil.rmtree(moved)
    index = load_index(out)
    assert "its vectors for re-ranking are not usable" in capsys.readouterr().err
    assert index.vectors is None and index.params["rerank"] == 0 and index.search(x[:2], 5).ids.shape == (2, 5)


def test_take_reads_rows_across_shards(tmp_path):
    from contrastkit.index.embedding_shards import write_manifest

    rng = np.random.default_rng(0)
    x = rng.standard_normal((25, 4)).astype(np.float32)
    for i, (a, b) in enumerate([(0, 10), (10, 20), (20, 25)]):
        part = tmp_path / f"shard-{i:05d}"
        part.mkdir()
        np.save(part / "embeddings.npy", x[a:b])
        (part / "ids.txt").write_text("".join(f"v{j}\n" for j in range(a, b)))
        (part / "embed.json").write_text(json.dumps({"rows": b - a, "dim": 4, "dtype": "float32", "skipped": []}))
    assert write_manifest(tmp_path, 3)
    rows = np.array([24, 0, 10, 9, 19, 20, 9])
    np.testing.assert_array_equal(Embeddings(tmp_path).take(rows), x[rows])
    with pytest.raises(IndexError, match="rows must be in"):
        Embeddings(tmp_path).take(np.array([25]))


def test_a_budget_chooses_the_kind_and_bad_requests_are_refused(collection, tmp_path, capsys):
    folder, _ = collection
    out = tmp_path / "auto.faiss"
    assert main(["index", "build", str(folder), "--out", str(out), "--max-memory", "2GB"]) == 0
    assert "wrote exact index" in capsys.readouterr().out  # 3,000 vectors: brute force
    meta = json.loads((tmp_path / "auto.faiss.json").read_text())
    assert meta["quality"]["plan"]["kind"] == "exact"
    assert main(["index", "build", str(folder), "--out", str(out), "--max-memory", "2GB", "--kind", "ivf"]) == 2
    assert "either --kind or --max-memory" in capsys.readouterr().err
    assert main(["index", "build", str(folder), "--out", str(out), "--max-memory", "plenty"]) == 2
    assert "expected a size like 2GB" in capsys.readouterr().err
