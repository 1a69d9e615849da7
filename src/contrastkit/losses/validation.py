"""Input checks shared by the losses: each error names the argument, the problem and the shapes."""

from __future__ import annotations

import torch
from torch import Tensor


def check_temperature(temperature: float, name: str = "temperature") -> float:
    """Refuse a temperature that is not a finite positive number."""
    t = float(temperature)
    if not t > 0 or t != t or t == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {temperature!r}")
    return t


def check_embeddings(name: str, x: Tensor, dim: int = 2) -> None:
    """Refuse a non-tensor, a tensor of the wrong rank or a non-floating dtype."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimensions, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_same(name_a: str, a: Tensor, name_b: str, b: Tensor, dims: slice = slice(None)) -> None:
    """Refuse two embedding tensors whose shapes (or the ``dims`` part of them) or dtypes differ."""
    if a.shape[dims] != b.shape[dims]:
        raise ValueError(f"{name_a} and {name_b} must have matching shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dtype != b.dtype:
        raise ValueError(f"{name_a} and {name_b} must have the same dtype, got {a.dtype} and {b.dtype}")


class NonFiniteError(ValueError):
    """A loss's input holds NaN or inf values (training diverged, or bad inputs)."""


def check_finite(name: str, x: Tensor) -> None:
    """Refuse NaN or inf values (costs one pass over ``x``; losses expose ``check_finite=False`` to skip).

    Raises:
        NonFiniteError: how many values are not finite.
    """
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise NonFiniteError(f"{name} contains {bad} non-finite values (NaN or inf); shape {tuple(x.shape)}")


def check_labels(name: str, labels: Tensor, n: int) -> Tensor:
    """Refuse labels that are not a 1-D integer tensor of length ``n``; return them as long."""
    if not isinstance(labels, Tensor):
        labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"{name} must be integer class ids, got dtype {labels.dtype}")
    return labels.long()


def check_batch(name: str, n: int, minimum: int = 2) -> None:
    """Refuse a batch too small to hold in-batch negatives."""
    if n < minimum:
        raise ValueError(f"{name} needs at least {minimum} samples for in-batch negatives, got {n}")


def check_pair(name_a: str, a: Tensor, name_b: str, b: Tensor, finite: bool = True) -> None:
    """The checks every two-input loss makes: 2-D floating tensors of one shape and dtype, finite if asked."""
    check_embeddings(name_a, a)
    check_embeddings(name_b, b)
    check_same(name_a, a, name_b, b)
    if finite:
        check_finite(name_a, a)
        check_finite(name_b, b)
