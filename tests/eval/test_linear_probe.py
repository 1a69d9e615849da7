"""Linear probe against scikit-learn's LogisticRegression with the same objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from contrastkit.eval import linear_probe
from contrastkit.eval.linear_probe import fit_logistic_regression


def data(n, d, classes, seed, noise=2.0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(classes, d))
    y = rng.integers(0, classes, n)
    return (w[y] + noise * rng.normal(size=(n, d))).astype(np.float32), y


def objective(w, b, x, y, wd):
    """mean cross-entropy + wd/2 ||W||^2, in float64."""
    logits = x @ w + b
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean() + 0.5 * wd * (w**2).sum()


@pytest.mark.parametrize("wd", [1e-1, 1e-3])
def test_solver_reaches_sklearn_optimum(wd):
    x, y = data(500, 12, 3, seed=0)
    x = StandardScaler().fit_transform(x.astype(np.float64))
    ours = fit_logistic_regression(torch.tensor(x, dtype=torch.float32), torch.tensor(y), 3, wd).double().numpy()
    sk = LogisticRegression(C=1.0 / (wd * len(x)), max_iter=5000, tol=1e-10).fit(x, y)
    ours_obj = objective(ours[:-1], ours[-1], x, y, wd)
    sk_obj = objective(sk.coef_.T, sk.intercept_, x, y, wd)
    assert ours_obj == pytest.approx(sk_obj, abs=1e-5)  # the same (unique) minimum
    agree = ((x @ ours[:-1] + ours[-1]).argmax(1) == sk.predict(x)).mean()
    assert agree >= 0.99


def test_accuracy_equals_sklearn_refit_with_the_chosen_value():
    x_all, y_all = data(900, 20, 4, seed=0)
    x, y, xt, yt = x_all[:600], y_all[:600], x_all[600:], y_all[600:]
    result = linear_probe(x, y, xt, yt, weight_decays=(1e-4, 1e-2, 1.0), seed=0)
    assert result.weight_decay in (1e-4, 1e-2, 1.0)
    scaler = StandardScaler().fit(x.astype(np.float64))
    model = LogisticRegression(C=1.0 / (result.weight_decay * len(x)), max_iter=5000, tol=1e-10)
    model.fit(scaler.transform(x.astype(np.float64)), y)
    assert result.accuracy == pytest.approx(model.score(scaler.transform(xt.astype(np.float64)), yt), abs=2 / len(yt))
    assert result.accuracy > 0.5  # far above the 0.25 chance


def test_selection_picks_the_best_validation_value():
    x, y = data(400, 30, 3, seed=5, noise=4.0)
    grid = (10.0, 1e-6)
    result = linear_probe(x, y, x[:50], y[:50], weight_decays=grid, seed=1)
    single = [linear_probe(x, y, x[:50], y[:50], weight_decays=(wd,), seed=1).val_accuracy for wd in grid]
    assert result.val_accuracy == pytest.approx(max(single), abs=1e-6)
    assert result.weight_decay == grid[int(np.argmax(single))] or single[0] == single[1]


def test_bad_input():
    x, y = data(50, 4, 2, seed=0)
    with pytest.raises(ValueError, match="train_emb has dimension 4 but test_emb has 3"):
        linear_probe(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match="weight_decays is empty"):
        linear_probe(x, y, x, y, weight_decays=())
    with pytest.raises(ValueError, match="at least 2 samples"):
        linear_probe(x, np.r_[y[:-1], 7], x, y)
