import pytest
import torch

from contrastkit.losses import MultipleNegativesRankingLoss


def reference(a, p, n=None, t=0.05, symmetric=False):
    """The loss written out in float64: cross-entropy of each anchor over [positives; negatives]."""
    a, p = (torch.nn.functional.normalize(x.double(), dim=1) for x in (a, p))
    candidates = p if n is None else torch.cat([p, torch.nn.functional.normalize(n.double(), dim=1)])
    logits = a @ candidates.T / t
    target = torch.arange(len(a))
    loss = torch.nn.functional.cross_entropy(logits, target)
    if symmetric:
        loss = (loss + torch.nn.functional.cross_entropy(p @ a.T / t, target)) / 2
    return loss


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("with_negatives", [False, True])
def test_matches_float64_cross_entropy_and_its_gradient(symmetric, with_negatives):
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(12, 16, generator=g, requires_grad=True) for _ in range(3))
    neg = n if with_negatives else None
    loss = MultipleNegativesRankingLoss(temperature=0.05, symmetric=symmetric)(a, p, neg)
    ref = reference(a, p, neg, 0.05, symmetric)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(loss, [a, p])
    ref_grads = torch.autograd.grad(ref, [a, p])
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got.double(), want.double(), rtol=1e-4, atol=1e-6)


def test_hard_negatives_raise_the_loss_and_temperature_001_is_finite():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(8, 32, generator=g)
    p = a + 0.1 * torch.randn(8, 32, generator=g)
    hard = a + 0.2 * torch.randn(8, 32, generator=g)  # close to the anchors: hard
    loss_fn = MultipleNegativesRankingLoss(temperature=0.01)
    assert loss_fn(a, p, hard) > loss_fn(a, p)
    assert torch.isfinite(loss_fn(a, p, hard))


def test_bad_inputs_are_named():
    loss_fn = MultipleNegativesRankingLoss()
    with pytest.raises(ValueError, match="anchors"):
        loss_fn(torch.randn(4, 8), torch.randn(5, 8))
    with pytest.raises(ValueError, match="negatives"):
        loss_fn(torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 7))
    with pytest.raises(ValueError, match="temperature"):
        MultipleNegativesRankingLoss(temperature=0)
    with pytest.raises(ValueError, match=r"finite|NaN"):
        loss_fn(torch.full((4, 8), float("nan")), torch.randn(4, 8))
