import math

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from contrastkit.losses import CLIPLoss
from tests.losses import reference


def _pairs(n=10, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g).requires_grad_(), torch.randn(n, d, generator=g).requires_grad_()


@pytest.mark.parametrize("block_size", [None, 3])
def test_equals_open_clip_values_and_grads(block_size):
    img, txt = _pairs()
    ours = CLIPLoss(block_size=block_size)
    value = ours(img, txt)
    g_img, g_txt, g_scale = torch.autograd.grad(value, [img, txt, ours.log_logit_scale])
    log_scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    ref = ClipLoss()(F.normalize(img, dim=-1), F.normalize(txt, dim=-1), log_scale.exp())
    r_img, r_txt, r_scale = torch.autograd.grad(ref, [img, txt, log_scale])
    torch.testing.assert_close(value, ref)
    torch.testing.assert_close(g_img, r_img)
    torch.testing.assert_close(g_txt, r_txt)
    torch.testing.assert_close(g_scale, r_scale)


def test_equals_float64_formula_with_passed_scale():
    img, txt = _pairs(n=7, seed=1)
    scale = torch.tensor(20.0, requires_grad=True)
    value = CLIPLoss()(img, txt, logit_scale=scale)
    ref = reference.clip(img, txt, 20.0)
    torch.testing.assert_close(value.double(), ref, atol=1e-6, rtol=1e-5)
    (g,) = torch.autograd.grad(value, scale)
    s64 = torch.tensor(20.0, dtype=torch.float64, requires_grad=True)
    (r,) = torch.autograd.grad(reference.clip(img.detach(), txt.detach(), s64), s64)
    torch.testing.assert_close(g.double(), r, atol=1e-6, rtol=1e-5)


def test_scale_is_initialised_like_clip_and_clamped():
    loss = CLIPLoss()
    assert loss.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-6)
    with torch.no_grad():
        loss.log_logit_scale.fill_(math.log(500.0))
    assert loss.logit_scale.item() == pytest.approx(100.0)
    fixed = CLIPLoss(learnable=False)
    assert not list(fixed.parameters())


def test_numerics():
    img, txt = _pairs(n=16, seed=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = CLIPLoss()(img.half(), txt.half(), logit_scale=100.0)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    same = torch.ones(5, 3)
    assert CLIPLoss()(same, same).item() == pytest.approx(math.log(5), rel=1e-5)


def test_bad_input():
    img, txt = _pairs(n=4)
    with pytest.raises(ValueError, match="image_features and text_features must have matching shapes"):
        CLIPLoss()(img, txt[:, :3])
    with pytest.raises(ValueError, match="at least 2 samples"):
        CLIPLoss()(img[:1], txt[:1])
    with pytest.raises(ValueError, match="logit_scale must be > 0"):
        CLIPLoss()(img, txt, logit_scale=0.0)
    with pytest.raises(ValueError, match="text_features contains"):
        CLIPLoss()(img, txt.detach() * float("nan"))
