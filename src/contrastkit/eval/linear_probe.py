"""Linear probe: logistic regression on frozen embeddings, its L2 strength chosen on a validation split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from contrastkit.eval._inputs import as_embeddings, as_labels

DEFAULT_WEIGHT_DECAYS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass(frozen=True)
class LinearProbeResult:
    """Accuracy of the refitted probe on the test set, and the selection that led to it."""

    accuracy: float  # test accuracy of the probe refitted on all training embeddings
    weight_decay: float  # the chosen L2 strength (per sample: sklearn C = 1 / (weight_decay * N))
    val_accuracy: float  # validation accuracy of the chosen value


def linear_probe(
    train_emb: Any,
    train_labels: Any,
    test_emb: Any,
    test_labels: Any,
    weight_decays: Sequence[float] = DEFAULT_WEIGHT_DECAYS,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_iter: int = 1000,
) -> LinearProbeResult:
    """Multinomial logistic regression (L-BFGS, scikit-learn) on standardised frozen features.

    Each weight decay ``wd`` (the L2 penalty ``wd/2 ||W||^2`` added to the mean cross-entropy, i.e. sklearn's
    ``C = 1 / (wd * n_train)``) is fitted on the training embeddings minus a stratified validation split and
    scored on that split; the best is refitted on all training embeddings and scored on the test set. Features are
    standardised with the training statistics.

    Raises:
        ValueError: mismatched lengths, empty or non-finite embeddings, different dimensions, a class with
            fewer than 2 training samples, or an empty weight-decay grid.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x_train = as_embeddings("train_emb", train_emb).numpy().astype(np.float64)
    y_train = as_labels("train_labels", train_labels, len(x_train), "train_emb").numpy()
    x_test = as_embeddings("test_emb", test_emb).numpy().astype(np.float64)
    y_test = as_labels("test_labels", test_labels, len(x_test), "test_emb").numpy()
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"train_emb has dimension {x_train.shape[1]} but test_emb has {x_test.shape[1]}: they must match"
        )
    if not weight_decays:
        raise ValueError("weight_decays is empty: give at least one value")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    counts = np.bincount(y_train)
    if (counts[counts > 0] < 2).any():
        raise ValueError("every class in train_labels needs at least 2 samples (one may go to the validation split)")

    def fit(x: np.ndarray, y: np.ndarray, wd: float) -> Any:
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(C=1.0 / (wd * len(x)), max_iter=max_iter)
        return scaler, model.fit(scaler.transform(x), y)

    x_fit, x_val, y_fit, y_val = train_test_split(
        x_train, y_train, test_size=val_fraction, stratify=y_train, random_state=seed
    )
    scored = []
    for wd in weight_decays:
        scaler, model = fit(x_fit, y_fit, wd)
        scored.append((float(model.score(scaler.transform(x_val), y_val)), -wd, wd))
    val_accuracy, _, best = max(scored)  # ties: the stronger decay
    scaler, model = fit(x_train, y_train, best)
    return LinearProbeResult(float(model.score(scaler.transform(x_test), y_test)), float(best), val_accuracy)
