"""Weighted cosine kNN against a float64 brute force written out here and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from contrastkit.eval import knn_accuracy, knn_scores


def clustered(n: int, d: int, classes: int, seed: int, spread: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d))
    y = rng.integers(0, classes, n)
    return (centres[y] + spread * rng.normal(size=(n, d))).astype(np.float32), y


def brute_force_scores(bank, labels, queries, k, t, classes):
    b = bank.astype(np.float64) / np.linalg.norm(bank, axis=1, keepdims=True)
    q = queries.astype(np.float64) / np.linalg.norm(queries, axis=1, keepdims=True)
    sim = q @ b.T
    scores = np.zeros((len(q), classes))
    for i in range(len(q)):
        nearest = np.argsort(-sim[i], kind="stable")[:k]
        for j in nearest:
            scores[i, labels[j]] += np.exp(sim[i, j] / t)
    return scores


@pytest.mark.parametrize(("k", "bank_chunk", "query_chunk"), [(20, 65536, 1024), (20, 37, 16), (500, 64, 7)])
def test_scores_match_brute_force(k, bank_chunk, query_chunk):
    x, labels_all = clustered(350, 16, 5, seed=0)
    bank, labels, queries = x[:300], labels_all[:300], x[300:]
    ours = knn_scores(bank, labels, queries, k=k, temperature=0.1, bank_chunk=bank_chunk, query_chunk=query_chunk)
    ref = brute_force_scores(bank, labels, queries, min(k, 300), 0.1, 5)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=2e-4)


def test_predictions_equal_sklearn_weighted_cosine_knn():
    x, y = clustered(2400, 32, 10, seed=2)
    bank, labels, queries, truth = x[:2000], y[:2000], x[2000:], y[2000:]
    t = 0.1

    def weights(distances):  # sklearn's cosine distance is 1 - cos
        return np.exp((1.0 - distances) / t)

    sk = KNeighborsClassifier(n_neighbors=50, metric="cosine", algorithm="brute", weights=weights).fit(bank, labels)
    expected = sk.predict(queries)
    scores = knn_scores(bank, labels, queries, k=50, temperature=t, bank_chunk=333)
    assert (scores.argmax(1).numpy() == expected).mean() == 1.0
    result = knn_accuracy(bank, labels, queries, truth, k=50, temperature=t)
    assert result.top1 == pytest.approx((expected == truth).mean())
    assert 1.0 >= result.top5 >= result.top1 > 0.5  # clustered data: far above the 0.1 chance


def test_k_is_clamped_and_reported():
    bank, labels = clustered(30, 8, 3, seed=4)
    result = knn_accuracy(bank, labels, bank, labels, k=200)
    assert result.k == 30


def test_torch_inputs_and_perfect_neighbours():
    x = torch.eye(4).repeat(5, 1) + 0.01 * torch.randn(20, 4)
    y = torch.arange(4).repeat(5)
    assert knn_accuracy(x, y, x, y, k=3).top1 == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros((3, 4)), [0, 1], np.zeros((2, 4)), [0, 1]), "train_labels has 2 labels but train_emb has 3 rows"),
        ((np.zeros((3, 4)), [0, 1, 1], np.zeros((2, 5)), [0, 1]), "train_emb has dimension 4 but test_emb has 5"),
        ((np.zeros((0, 4)), [], np.zeros((2, 4)), [0, 1]), "train_emb is empty"),
        ((np.full((3, 4), np.nan), [0, 1, 1], np.zeros((2, 4)), [0, 1]), "train_emb has NaN or infinite values"),
        ((np.zeros(3), [0, 1, 1], np.zeros((2, 4)), [0, 1]), r"train_emb must be a 2-D \(N, D\) array"),
        ((np.ones((3, 4)), [0, -1, 1], np.ones((2, 4)), [0, 1]), "train_labels has negative class ids"),
    ],
)
def test_bad_input_names_the_argument(args, message):
    with pytest.raises(ValueError, match=message):
        knn_accuracy(*args)
