"""CPCLoss against an explicit float64 loop over (b, k, t) with a full softmax over all B*T targets."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses.cpc import CPCLoss


def _inputs(b=2, k=3, t=5, d=4, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    predictions = torch.randn(b, k, t, d, generator=g, dtype=dtype).requires_grad_()
    targets = torch.randn(b, t, d, generator=g, dtype=dtype).requires_grad_()
    return predictions, targets


def _reference(predictions, targets, temperature=1.0, normalize=False):
    """float64 mean over valid (b, k, t) of -log softmax over all (b', t') of the positive (b, t + k)."""
    p, z = predictions.double(), targets.double()
    if normalize:
        p = p / p.norm(dim=-1, keepdim=True)
        z = z / z.norm(dim=-1, keepdim=True)
    b_size, k_max, t_len, _ = p.shape
    candidates = z.reshape(b_size * t_len, -1)
    terms = []
    for b in range(b_size):
        for k in range(1, k_max + 1):
            for t in range(t_len - k):
                logits = candidates @ p[b, k - 1, t] / temperature  # (B*T,)
                terms.append(torch.logsumexp(logits, 0) - logits[b * t_len + t + k])
    return torch.stack(terms).mean()


def _grads(loss, inputs):
    return torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize(("temperature", "normalize"), [(1.0, False), (0.5, False), (0.1, True), (1.0, True)])
def test_matches_float64_loops_values_and_grads(temperature, normalize):
    predictions, targets = _inputs()
    loss = CPCLoss(temperature=temperature, normalize=normalize)(predictions, targets)
    ref = _reference(predictions, targets, temperature, normalize)
    assert loss.dtype == torch.float32 and loss.dim() == 0
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-6)
    inputs = [predictions, targets]
    for got, want in zip(_grads(loss, inputs), _grads(ref, inputs), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_ignores_predictions_past_the_end():
    predictions, targets = _inputs(b=2, k=2, t=4)
    loss = CPCLoss()(predictions, targets)
    g_pred = _grads(loss, [predictions])[0]
    for k in range(1, 3):
        assert torch.all(g_pred[:, k - 1, 4 - k :] == 0)  # t + k >= T: no target, no gradient
        assert torch.all(g_pred[:, k - 1, : 4 - k].abs().sum(-1) > 0)
    with torch.no_grad():
        changed = predictions.detach().clone()
        changed[:, 1, 3] = 1e6  # k = 2, t = 3: invalid
        torch.testing.assert_close(CPCLoss()(changed, targets), loss.detach())


def test_block_size_3_equals_single_block():
    predictions, targets = _inputs(b=3, k=2, t=6, d=5, seed=1)
    full = CPCLoss(normalize=True, temperature=0.2)(predictions, targets)
    blocked = CPCLoss(normalize=True, temperature=0.2, block_size=3)(predictions, targets)
    torch.testing.assert_close(blocked, full, rtol=1e-6, atol=1e-6)
    pairs = zip(_grads(blocked, [predictions, targets]), _grads(full, [predictions, targets]), strict=True)
    for got, want in pairs:
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_low_temperature_has_no_nan():
    predictions, targets = _inputs(b=2, k=2, t=6, d=8, seed=2)
    loss = CPCLoss(temperature=0.01)(predictions, targets)  # unnormalised: logits in the hundreds
    ref = _reference(predictions, targets, temperature=0.01)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-4)
    assert all(torch.isfinite(g).all() for g in _grads(loss, [predictions, targets]))


def test_bf16_autocast_is_finite_float32():
    predictions, targets = _inputs(b=2, k=2, t=8, d=16, seed=3, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = CPCLoss(normalize=True, temperature=0.1)(predictions, targets)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    ref = _reference(predictions, targets, temperature=0.1, normalize=True)
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-5)
    assert all(torch.isfinite(g).all() for g in _grads(loss, [predictions, targets]))


def test_accuracy_per_step():
    predictions, targets = _inputs(b=2, k=3, t=6, d=8, seed=4)
    loss_fn = CPCLoss(block_size=4)
    acc = loss_fn.accuracy(predictions, targets)
    p, z = predictions.detach(), targets.detach().reshape(-1, 8)
    for k in range(1, 4):
        hits = [int((z @ p[b, k - 1, t]).argmax()) == b * 6 + t + k for b in range(2) for t in range(6 - k)]
        assert math.isclose(acc[k - 1].item(), sum(hits) / len(hits), rel_tol=1e-6)
    # Perfect predictions: each equals its (unique, well separated) target.
    perfect = torch.zeros(2, 3, 6, 8)
    for k in range(1, 4):
        perfect[:, k - 1, : 6 - k] = 10 * targets.detach()[:, k:]
    assert torch.equal(loss_fn.accuracy(perfect, 10 * targets.detach()), torch.ones(3))


@pytest.mark.parametrize(
    ("kwargs", "shapes", "match"),
    [
        ({}, ((2, 5, 4), (2, 5, 4)), "predictions"),
        ({}, ((2, 1, 5, 4), (2, 5, 4, 1)), "targets"),
        ({}, ((2, 1, 5, 4), (3, 5, 4)), "batch size B"),
        ({}, ((2, 1, 5, 4), (2, 5, 3)), "feature size D"),
        ({}, ((2, 1, 5, 4), (2, 6, 4)), "length T"),
        ({}, ((2, 5, 5, 4), (2, 5, 4)), "predictions"),  # K = T: no t + k < T
        ({}, ((2, 6, 5, 4), (2, 5, 4)), "predictions"),  # K > T
        ({"temperature": 0.0}, None, "temperature"),
        ({"temperature": -1.0}, None, "temperature"),
        ({"temperature": math.nan}, None, "temperature"),
        ({"block_size": 0}, None, "block_size"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(kwargs, shapes, match):
    with pytest.raises(ValueError, match=match):
        loss_fn = CPCLoss(**kwargs)
        if shapes is not None:
            loss_fn(torch.randn(*shapes[0]), torch.randn(*shapes[1]))


@pytest.mark.parametrize("name", ["predictions", "targets"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_inputs_raise(name, bad):
    inputs = {"predictions": torch.randn(2, 1, 4, 3), "targets": torch.randn(2, 4, 3)}
    inputs[name].view(-1)[1] = bad
    with pytest.raises(ValueError, match=f"{name} contains"):
        CPCLoss()(**inputs)
    CPCLoss(check_finite=False)(**inputs)  # the check can be turned off


def test_integer_inputs_raise():
    with pytest.raises(ValueError, match="predictions must be a floating-point"):
        CPCLoss()(torch.ones(2, 1, 4, 3, dtype=torch.long), torch.randn(2, 4, 3))
