"""Alignment, uniformity, RankMe, embedding std and collapse warnings against float64 formulas."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from contrastkit.eval import alignment, collapse_warnings, embedding_std, rankme, uniformity


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_alignment_matches_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(64, 8)), rng.normal(size=(64, 8))
    ref = (np.linalg.norm(unit(a) - unit(b), axis=1) ** 2).mean()
    assert alignment(a, b) == pytest.approx(ref, rel=1e-5)
    assert alignment(a, a) == pytest.approx(0.0, abs=1e-6)


def test_uniformity_matches_formula():
    rng = np.random.default_rng(1)
    z = unit(rng.normal(size=(40, 5)))
    pairs = [np.exp(-2 * np.sum((z[i] - z[j]) ** 2)) for i in range(40) for j in range(40) if i != j]
    assert uniformity(z) == pytest.approx(math.log(np.mean(pairs)), rel=1e-6)
    collapsed = np.ones((40, 5)) + 1e-6 * rng.normal(size=(40, 5))
    assert uniformity(collapsed) > uniformity(z)  # all at one point: log 1 = 0, the worst value


def test_rankme_of_equal_strength_rank_r_matrix_is_r():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(100, 6)))  # (100, 6) orthonormal columns
    v, _ = np.linalg.qr(rng.normal(size=(32, 6)))
    z = q @ np.diag([3.0] * 6) @ v.T  # rank 6, equal singular values
    assert rankme(z) == pytest.approx(6.0, rel=1e-4)
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum() + 1e-7
    assert rankme(z) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-5)  # inputs pass through float32


def test_embedding_std_and_its_reference():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5000, 64))
    result = embedding_std(z)
    assert result.expected == pytest.approx(1 / 8)
    assert result.std == pytest.approx(unit(z).std(axis=0, ddof=1).mean(), rel=1e-4)
    assert result.ratio == pytest.approx(1.0, abs=0.05)  # isotropic Gaussian: uniformly spread


def test_collapse_warnings():
    rng = np.random.default_rng(4)
    healthy = rng.normal(size=(512, 128))
    assert collapse_warnings(healthy) == []
    one_point = np.ones((512, 128)) + 1e-4 * rng.normal(size=(512, 128))
    (message,) = collapse_warnings(one_point)
    assert message.startswith("complete collapse") and "Usually fixed by" in message
    two_dims = rng.normal(size=(512, 2)) @ rng.normal(size=(2, 128)) + 1e-3 * rng.normal(size=(512, 128))
    (message,) = collapse_warnings(two_dims)
    assert message.startswith("dimensional collapse") and "of 128 dimensions" in message


def test_bad_input():
    with pytest.raises(ValueError, match=r"z_a \(3, 4\) and z_b \(2, 4\) must have the same shape"):
        alignment(np.ones((3, 4)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="z has NaN"):
        rankme(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="at least 2 rows"):
        uniformity(np.ones((1, 4)))


def test_import_does_not_pull_lightning_or_faiss():
    code = "import contrastkit.eval, sys; assert 'lightning' not in sys.modules and 'faiss' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
