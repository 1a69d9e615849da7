import pytest
import torch
import torch.nn.functional as F

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


def _guided_direction(q, gq, c, gc, a, p, thresholds, temperature):
    """Mean over queries q_i of logsumexp over the kept candidates minus the positive logit, as a loop."""
    total = 0.0
    for i in range(len(q)):
        kept = [j for j in range(len(c)) if j == i or float(gq[i] @ gc[j]) <= thresholds[i]]
        logits = torch.stack([q[i] @ c[j] for j in kept]) / temperature
        total += float(torch.logsumexp(logits, 0) - (a[i] @ p[i]) / temperature)
    return total / len(q)


def _guided_reference(a, p, n, ga, gp, gn, temperature, margin, symmetric):
    """GISTEmbed's masking written out as loops in float64."""
    a, p = F.normalize(a.double(), dim=-1), F.normalize(p.double(), dim=-1)
    ga, gp = F.normalize(ga.double(), dim=-1), F.normalize(gp.double(), dim=-1)
    c = torch.cat([p] + ([F.normalize(n.double(), dim=-1)] if n is not None else []))
    gc = torch.cat([gp] + ([F.normalize(gn.double(), dim=-1)] if gn is not None else []))
    thresholds = [float(ga[i] @ gp[i]) - margin for i in range(len(a))]
    loss = _guided_direction(a, ga, c, gc, a, p, thresholds, temperature)
    if symmetric:
        loss = (loss + _guided_direction(p, gp, a, ga, a, p, thresholds, temperature)) / 2
    return loss


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("with_negatives", [False, True])
def test_guided_masking_matches_the_loop(symmetric, with_negatives):
    torch.manual_seed(0)
    a, p, n = torch.randn(12, 16), torch.randn(12, 16), torch.randn(12, 16) if with_negatives else None
    ga, gp = torch.randn(12, 8), torch.randn(12, 8)
    gn = torch.randn(12, 8) if with_negatives else None
    ga[3], gp[5] = gp[3] * 0.2, ga[3] * 2.0  # anchor 3's guide prefers positive 5 to its own: masked
    guide = (ga, gp) if n is None else (ga, gp, gn)
    for margin in (0.0, 0.1):
        loss = MultipleNegativesRankingLoss(temperature=0.05, symmetric=symmetric, guide_margin=margin)
        expected = _guided_reference(a, p, n, ga, gp, gn, 0.05, margin, symmetric)
        assert float(loss(a, p, n, guide=guide)) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    unguided = MultipleNegativesRankingLoss(temperature=0.05, symmetric=symmetric)(a, p, n)
    assert float(MultipleNegativesRankingLoss(temperature=0.05, symmetric=symmetric)(a, p, n, guide=guide)) < float(
        unguided
    )  # masked candidates only ever leave the denominator


def test_a_guide_that_agrees_with_the_pairs_masks_nothing_and_bad_guides_are_refused():
    torch.manual_seed(1)
    a = torch.randn(6, 8)
    p = a + 0.01 * torch.randn(6, 8)
    loss = MultipleNegativesRankingLoss()
    assert float(loss(a, p, guide=(a, p))) == pytest.approx(float(loss(a, p)), rel=1e-6)  # each pair its own best
    with pytest.raises(ValueError, match="guide needs the guide embeddings of anchors, positives"):
        loss(a, p, guide=(a,))
    with pytest.raises(ValueError, match="batch's 6 rows"):
        loss(a, p, guide=(a[:3], p[:3]))
