"""LARS against its paper's update rule (You, Gitman and Ginsburg 2017, Algorithm 1, with SimCLR's exclusions),
written out here in float64 for three steps."""

import pytest
import torch

from contrastkit.optim.lars import LARS


def reference_steps(w0, grads, lr, momentum, wd, eta, exclude):
    """The update for each step: g += wd w; g *= eta ||w|| / ||g||; v = m v + g; w -= lr v (excluded: plain SGD)."""
    w, v = w0.clone(), None
    for g in grads:
        if not exclude:
            g = g + wd * w
            if w.norm() > 0 and g.norm() > 0:
                g = g * (eta * w.norm() / g.norm())
        v = g.clone() if v is None else momentum * v + g
        w = w - lr * v
    return w


@pytest.mark.parametrize("exclude", [False, True])
def test_three_steps_match_the_papers_rule(exclude):
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    grads = [torch.randn(5, 3, generator=gen, dtype=torch.float64) for _ in range(3)]
    p = torch.nn.Parameter(w0.clone())
    opt = LARS([{"params": [p], "lars_exclude": exclude}], lr=0.5, momentum=0.9, weight_decay=1e-2, eta=0.02)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    expected = reference_steps(w0, grads, 0.5, 0.9, 1e-2, 0.02, exclude)
    assert torch.allclose(p.detach(), expected, rtol=1e-12, atol=1e-12)


def test_the_step_size_is_eta_lr_times_the_weight_norm_whatever_the_gradient_scale():
    """Layer-wise adaptation: without momentum or decay, ||dw|| = lr * eta * ||w|| for any gradient magnitude."""
    for scale in (1e-6, 1.0, 1e6):
        p = torch.nn.Parameter(torch.full((4,), 2.0, dtype=torch.float64))
        opt = LARS([p], lr=0.1, momentum=0.0, eta=0.01)
        before = p.detach().clone()
        p.grad = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64) * scale
        opt.step()
        assert float((p.detach() - before).norm()) == pytest.approx(0.1 * 0.01 * float(before.norm()), rel=1e-12)


def test_zero_weights_or_gradients_fall_back_to_plain_sgd_and_bad_settings_are_refused():
    p = torch.nn.Parameter(torch.zeros(3))  # ||w|| = 0: the trust ratio would zero the step; it is 1 instead
    opt = LARS([p], lr=0.1, momentum=0.0)
    p.grad = torch.ones(3)
    opt.step()
    assert torch.allclose(p.detach(), torch.full((3,), -0.1))
    with pytest.raises(ValueError, match="eta > 0"):
        LARS([p], lr=0.1, eta=0.0)
