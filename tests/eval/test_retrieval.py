"""Retrieval metrics against a per-query loop written out here and against scikit-learn's average precision."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from contrastkit.eval import retrieval_metrics


def reference(q, g, rel, ks):
    qn, gn = q / np.linalg.norm(q, axis=1, keepdims=True), g / np.linalg.norm(g, axis=1, keepdims=True)
    sim = qn.astype(np.float64) @ gn.T.astype(np.float64)
    recalls, aps, rrs = {k: [] for k in ks}, [], []
    for i in range(len(q)):
        order = np.argsort(-sim[i], kind="stable")
        r = rel[i, order]
        for k in ks:
            recalls[k].append(r[:k].any())
        aps.append(average_precision_score(rel[i], sim[i]))
        rrs.append(1.0 / (np.flatnonzero(r)[0] + 1))
    out = {f"recall@{k}": np.mean(recalls[k]) for k in ks}
    out["map"], out["mrr"] = np.mean(aps), np.mean(rrs)
    return out


def test_matches_reference_and_sklearn_average_precision():
    rng = np.random.default_rng(0)
    labels_g = rng.integers(0, 5, 200)
    centres = rng.normal(size=(5, 16))
    g = centres[labels_g] + 1.5 * rng.normal(size=(200, 16))
    labels_q = rng.integers(0, 5, 40)
    q = centres[labels_q] + 1.5 * rng.normal(size=(40, 16))
    rel = labels_q[:, None] == labels_g[None, :]
    ours = retrieval_metrics(q, g, rel, chunk_size=7)
    ref = reference(q, g, rel, (1, 5, 10))
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-5), key
    assert retrieval_metrics(q, g, (labels_q, labels_g)) == pytest.approx(ours)


def test_perfect_and_worst_rankings():
    g = np.eye(4)
    assert retrieval_metrics(g, g, np.eye(4, dtype=bool)) == pytest.approx(
        {"recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0, "map": 1.0, "mrr": 1.0}
    )
    q = np.array([[1.0, 0.0, 0.0]])
    g = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [-1.0, 0.0, 0.0]])
    out = retrieval_metrics(q, g, np.array([[False, False, True]]), ks=(1, 2))
    assert out["recall@1"] == 0.0 and out["recall@2"] == 0.0 and out["mrr"] == pytest.approx(1 / 3)


def test_bad_input():
    with pytest.raises(ValueError, match=r"relevant must be \(2, 3\)"):
        retrieval_metrics(np.ones((2, 4)), np.ones((3, 4)), np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="query 1 has no relevant gallery item"):
        retrieval_metrics(np.ones((2, 4)), np.ones((3, 4)), np.array([[1, 0, 0], [0, 0, 0]], dtype=bool))
    with pytest.raises(ValueError, match="queries has dimension 4 but gallery has 5"):
        retrieval_metrics(np.ones((2, 4)), np.ones((3, 5)), np.ones((2, 3), dtype=bool))
