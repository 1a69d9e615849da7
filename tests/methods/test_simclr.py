"""SimCLR: the loss is NT-Xent (float64 formula) on the per-view projections; it trains; bad views are refused."""

from __future__ import annotations

import pytest
import torch

from contrastkit.methods import SimCLR, create_method
from tests.losses.reference import nt_xent
from tests.methods.digit_views import fixed_batch_loss, tiny_backbone, train_on_digits, two_views


def test_loss_is_nt_xent_of_each_views_projection():
    method = SimCLR(tiny_backbone(), projection_dim=16, hidden_dim=32, temperature=0.5)
    views = [torch.randn(6, 1, 16, 16), torch.randn(6, 1, 16, 16)]
    out = method(views)
    z_a, z_b = (method.projection_head(method.backbone(v)) for v in views)  # BatchNorm statistics per view
    torch.testing.assert_close(out.loss.double(), nt_xent(z_a, z_b, 0.5), rtol=1e-5, atol=1e-6)
    assert out.metrics["loss"] == out.loss.detach()
    out.loss.backward()
    assert all(p.grad is not None for p in method.parameters())


def test_defaults_are_the_papers_and_registry_builds_it():
    method = create_method("simclr", tiny_backbone())
    assert method.criterion.temperature == 0.1
    linears = [m for m in method.projection_head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 2048), (2048, 128)]
    assert method.embed(torch.randn(3, 1, 16, 16)).shape == (3, 32)


def test_wrong_views_are_refused():
    method = SimCLR(tiny_backbone(), projection_dim=8, hidden_dim=16)
    with pytest.raises(ValueError, match="SimCLR takes 2 views per image, got 3"):
        method([torch.randn(4, 1, 16, 16)] * 3)
    with pytest.raises(TypeError, match="list of view tensors"):
        method(torch.randn(4, 1, 16, 16))


def test_training_lowers_the_loss_on_a_fixed_batch():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        method = SimCLR(tiny_backbone(), projection_dim=32, hidden_dim=64, temperature=0.5)
        before = fixed_batch_loss(method, two_views)
        train_on_digits(method, two_views, steps=30, lr=0.05)
        assert fixed_batch_loss(method, two_views) < before - 0.05
    finally:
        torch.set_num_threads(threads)
