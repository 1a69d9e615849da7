"""Linear probe: logistic regression on frozen embeddings, its L2 strength chosen on a validation split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.eval._inputs import as_embeddings, as_labels

DEFAULT_WEIGHT_DECAYS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


@dataclass(frozen=True)
class LinearProbeResult:
    """Accuracy of the refitted probe on the test set, and the selection that led to it."""

    accuracy: float  # test accuracy of the probe refitted on all training embeddings
    weight_decay: float  # the chosen L2 strength (scikit-learn's C = 1 / (weight_decay * n_train))
    val_accuracy: float  # validation accuracy of the chosen value


def fit_logistic_regression(
    x: Tensor, y: Tensor, num_classes: int, weight_decay: float, init: Tensor | None = None, max_iter: int = 200
) -> Tensor:
    """Weights ``(D + 1, C)`` (last row: bias) minimising ``mean CE(x W + b, y) + weight_decay / 2 * ||W||^2``.

    The multinomial logistic regression of scikit-learn's ``LogisticRegression(C=1 / (weight_decay * N))`` (bias
    not penalised), solved by full-batch L-BFGS with a strong-Wolfe line search in float32 torch: several times
    faster than scikit-learn's solver on 2 cores, to the same optimum (strictly convex objective).
    """
    n = x.shape[0]
    xt = x.t().contiguous()  # (D, N): both products below read it row by row (a transposed view is ~4x slower)
    onehot = F.one_hot(y, num_classes).to(x.dtype)  # (N, C)
    w = torch.zeros(x.shape[1] + 1, num_classes) if init is None else init.clone()  # (D + 1, C)
    w.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe", tolerance_grad=1e-7
    )

    @torch.no_grad()
    def closure() -> Tensor:  # the loss and its gradient written out: no autograd graph over the N x D features
        weights, bias = w[:-1], w[-1]
        logits = torch.addmm(bias, x, weights)  # (N, C)
        log_p = torch.log_softmax(logits, dim=1)  # (N, C)
        loss = -(log_p * onehot).sum() / n + 0.5 * weight_decay * weights.pow(2).sum()
        residual = (log_p.exp_() - onehot).div_(n)  # (N, C): d loss / d logits
        w.grad = torch.cat([torch.addmm(weights, xt, residual, beta=weight_decay), residual.sum(0, keepdim=True)])
        return loss

    opt.step(closure)
    return w.detach()


def _accuracy(w: Tensor, x: Tensor, y: Tensor) -> float:
    return float(((x @ w[:-1] + w[-1]).argmax(dim=1) == y).float().mean())


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        val.append(members[: max(1, round(fraction * len(members)))])
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(y)), val_idx), val_idx


@dataclass(frozen=True)
class FittedProbe:
    """A logistic-regression probe fitted on all training embeddings, in the embeddings' own (raw) space."""

    weight: Tensor  # (C, D): logits = x @ weight.T + bias on raw (unstandardised) embeddings
    bias: Tensor  # (C,)
    weight_decay: float  # the L2 strength chosen on the validation split
    val_accuracy: float  # validation accuracy of that choice


def fit_linear_probe(
    train_emb: Any,
    train_labels: Any,
    num_classes: int | None = None,
    weight_decays: Sequence[float] = DEFAULT_WEIGHT_DECAYS,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_iter: int = 200,
) -> FittedProbe:
    """Multinomial logistic regression on standardised frozen features, weight decay chosen on validation.

    Each weight decay (the L2 penalty ``wd/2 ||W||^2`` added to the mean cross-entropy, i.e. scikit-learn's
    ``C = 1 / (wd * n)``) is fitted on the training embeddings minus a stratified validation split (largest decay
    first, each fit warm-started from the previous) and scored on that split; the best (ties: the larger decay) is
    refitted on all training embeddings. Features are standardised with the training statistics, and the
    standardisation is folded into the returned weights, so they apply to raw embeddings (a linear layer's
    initialisation, as LP-FT needs).

    Raises:
        ValueError: mismatched lengths, empty or non-finite embeddings, a class with fewer than 2 training
            samples, or an empty weight-decay grid.
    """
    x_train = as_embeddings("train_emb", train_emb)
    y_train = as_labels("train_labels", train_labels, len(x_train), "train_emb")
    if not weight_decays:
        raise ValueError("weight_decays is empty: give at least one value")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    counts = torch.bincount(y_train)
    if bool((counts[counts > 0] < 2).any()):
        raise ValueError("every class in train_labels needs at least 2 samples (one may go to the validation split)")
    classes = int(y_train.max()) + 1 if num_classes is None else int(num_classes)

    def standardise(fit: Tensor, *others: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        mean, std = fit.mean(dim=0), fit.std(dim=0, unbiased=False).clamp_min(1e-8)
        return [(t - mean) / std for t in (fit, *others)], mean, std

    fit_idx, val_idx = _stratified_split(y_train.numpy(), val_fraction, seed)
    (x_fit, x_val), _, _ = standardise(x_train[fit_idx], x_train[val_idx])
    y_fit, y_val = y_train[fit_idx], y_train[val_idx]
    scored, w = [], None
    for wd in sorted(weight_decays, reverse=True):
        w = fit_logistic_regression(x_fit, y_fit, classes, wd, init=w, max_iter=max_iter)
        scored.append((_accuracy(w, x_val, y_val), wd))
    best_val = max(acc for acc, _ in scored)
    best = max(wd for acc, wd in scored if acc == best_val)
    (x_all,), mean, std = standardise(x_train)
    w = fit_logistic_regression(x_all, y_train, classes, best, max_iter=max_iter)  # (D + 1, C)
    weight = (w[:-1] / std[:, None]).t().contiguous()  # (C, D): ((x - mean) / std) W = x (W / std) - mean (W / std)
    bias = w[-1] - mean @ weight.t()  # (C,)
    return FittedProbe(weight, bias, float(best), float(best_val))


def linear_probe(
    train_emb: Any,
    train_labels: Any,
    test_emb: Any,
    test_labels: Any,
    weight_decays: Sequence[float] = DEFAULT_WEIGHT_DECAYS,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_iter: int = 200,
) -> LinearProbeResult:
    """Test accuracy of :func:`fit_linear_probe` fitted on the training embeddings.

    Raises:
        ValueError: as :func:`fit_linear_probe`, and a test set of another dimension.
    """
    x_train = as_embeddings("train_emb", train_emb)
    x_test = as_embeddings("test_emb", test_emb)
    y_test = as_labels("test_labels", test_labels, len(x_test), "test_emb")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"train_emb has dimension {x_train.shape[1]} but test_emb has {x_test.shape[1]}: they must match"
        )
    y_train = as_labels("train_labels", train_labels, len(x_train), "train_emb")
    classes = int(max(int(y_train.max()), int(y_test.max()))) + 1
    probe = fit_linear_probe(x_train, y_train, classes, weight_decays, val_fraction, seed, max_iter)
    accuracy = float(((x_test @ probe.weight.t() + probe.bias).argmax(dim=1) == y_test).float().mean())
    return LinearProbeResult(accuracy, probe.weight_decay, probe.val_accuracy)
