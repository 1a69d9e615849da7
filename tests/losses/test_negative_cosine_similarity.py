"""NegativeCosineSimilarity against a float64 loop reference and lightly, properties and validation."""

from __future__ import annotations

import math

import lightly.loss as lightly_loss
import pytest
import torch

from contrastkit.losses.negative_cosine_similarity import NegativeCosineSimilarity


def reference(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Float64: minus the mean over rows of <p_k, z_k> / (|p_k| |z_k|), written out with loops."""
    n, d = p.shape
    total = torch.zeros((), dtype=torch.float64)
    for k in range(n):
        dot = sum(p[k, i] * z[k, i] for i in range(d))
        norm_p = torch.sqrt(sum(p[k, i] ** 2 for i in range(d)))
        norm_z = torch.sqrt(sum(z[k, i] ** 2 for i in range(d)))
        total = total + dot / (norm_p * norm_z)
    return -total / n


def grads(fn, p, z):
    p, z = p.clone().requires_grad_(), z.clone().requires_grad_()
    loss = fn(p, z)
    return (loss, *torch.autograd.grad(loss, (p, z)))


def test_value_and_gradients_match_float64_reference():
    p, z = torch.randn(7, 5) * 3, torch.randn(7, 5)
    ours = grads(NegativeCosineSimilarity(), p, z)
    assert ours[0].dtype == torch.float32
    for got, want in zip(ours, grads(reference, p.double(), z.double()), strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def test_matches_lightly():
    p, z = torch.randn(64, 128), torch.randn(64, 128)
    ours = grads(NegativeCosineSimilarity(), p, z)
    theirs = grads(lightly_loss.NegativeCosineSimilarity(), p, z)
    for got, want in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_target_is_not_detached_and_range_is_minus_one_to_one():
    p, z = torch.randn(4, 8), torch.randn(4, 8, requires_grad=True)
    loss = NegativeCosineSimilarity()(p, z)
    (gz,) = torch.autograd.grad(loss, z)  # the stop-gradient is the caller's job
    assert gz.abs().sum() > 0
    assert math.isclose(NegativeCosineSimilarity()(p, 2 * p).item(), -1.0, abs_tol=1e-6)
    assert math.isclose(NegativeCosineSimilarity()(p, -p).item(), 1.0, abs_tol=1e-6)


def test_zero_vector_gives_zero_similarity_not_nan():
    p, z = torch.randn(2, 3), torch.randn(2, 3)
    p[0] = 0.0
    loss = NegativeCosineSimilarity()(p, z)
    expected = -torch.nn.functional.cosine_similarity(p[1:], z[1:]).item() / 2
    assert math.isclose(loss.item(), expected, abs_tol=1e-6)


def test_float32_under_bf16_autocast_and_half_inputs():
    layer = torch.nn.Linear(8, 16)
    x_a, x_b = torch.randn(32, 8), torch.randn(32, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        p, z = layer(x_a), layer(x_b)  # (32, 16) bf16
        loss = NegativeCosineSimilarity()(p, z)
    assert p.dtype == torch.bfloat16 and loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(loss, NegativeCosineSimilarity()(p.float(), z.float()), rtol=1e-6, atol=1e-7)
    big = torch.full((4, 16), 3e4, dtype=torch.float16)  # squared norm overflows in float16
    assert math.isclose(NegativeCosineSimilarity()(big, big).item(), -1.0, abs_tol=1e-6)


@pytest.mark.parametrize(
    "p, z, match",
    [
        (torch.randn(8), torch.randn(8), "p must have 2 dimensions"),
        (torch.randn(8, 4), torch.randn(8, 4, 1), "z must have 2 dimensions"),
        (torch.randn(8, 4), torch.randn(8, 3), "p and z must have matching shapes"),
        (torch.randn(8, 4), torch.randn(8, 4).bfloat16(), "p and z must have the same dtype"),
        (torch.zeros(8, 4, dtype=torch.int32), torch.zeros(8, 4), "p must be a floating"),
        (torch.randn(8, 4), torch.tensor([[float("nan")] + [0.0] * 3] * 8), "z contains 8 non-finite"),
        (torch.randn(0, 4), torch.randn(0, 4), r"p needs at least 1 sample.*\(0, 4\)"),
    ],
)
def test_bad_inputs_raise(p, z, match):
    with pytest.raises(ValueError, match=match):
        NegativeCosineSimilarity()(p, z)


def test_check_finite_can_be_skipped():
    p = torch.randn(3, 4)
    p[1, 2] = float("nan")
    assert torch.isnan(NegativeCosineSimilarity(check_finite=False)(p, torch.randn(3, 4)))
