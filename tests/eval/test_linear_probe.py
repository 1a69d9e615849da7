"""Linear probe against scikit-learn's LogisticRegression refitted by hand with the chosen strength."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from contrastkit.eval import linear_probe


def data(n, d, classes, seed, noise=2.0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(classes, d))
    y = rng.integers(0, classes, n)
    return (w[y] + noise * rng.normal(size=(n, d))).astype(np.float32), y


def test_accuracy_equals_sklearn_refit_with_the_chosen_value():
    x_all, y_all = data(900, 20, 4, seed=0)
    x, y, xt, yt = x_all[:600], y_all[:600], x_all[600:], y_all[600:]
    result = linear_probe(x, y, xt, yt, weight_decays=(1e-4, 1e-2, 1.0), seed=0)
    assert result.weight_decay in (1e-4, 1e-2, 1.0)
    scaler = StandardScaler().fit(x.astype(np.float64))
    model = LogisticRegression(C=1.0 / (result.weight_decay * len(x)), max_iter=1000)
    model.fit(scaler.transform(x.astype(np.float64)), y)
    assert result.accuracy == pytest.approx(model.score(scaler.transform(xt.astype(np.float64)), yt))
    assert result.accuracy > 0.5  # far above the 0.25 chance


def test_grid_selection_prefers_regularisation_on_noise():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 150)).astype(np.float32), rng.integers(0, 2, 200)  # labels are pure noise
    result = linear_probe(x, y, x[:50], y[:50], weight_decays=(1e-6, 10.0))
    assert result.val_accuracy <= 1.0
    assert result.weight_decay in (1e-6, 10.0)


def test_bad_input():
    x, y = data(50, 4, 2, seed=0)
    with pytest.raises(ValueError, match="train_emb has dimension 4 but test_emb has 3"):
        linear_probe(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match="weight_decays is empty"):
        linear_probe(x, y, x, y, weight_decays=())
    with pytest.raises(ValueError, match="at least 2 samples"):
        linear_probe(x, np.r_[y[:-1], 7], x, y)
