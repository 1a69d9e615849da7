import pytest
import torch
from pytorch_metric_learning.losses import SupConLoss as PMLSupCon

from contrastkit.losses import InfoNCELoss, SupConLoss
from tests.losses import reference


def _features(n=10, v=2, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, v, d, generator=g).requires_grad_()


@pytest.mark.parametrize("views", [1, 2, 3])
@pytest.mark.parametrize("block_size", [None, 4])
def test_equals_float64_formula(views, block_size):
    f = _features(v=views)
    labels = torch.tensor([0, 1, 1, 2, 2, 2, 3, 0, 4, 1])
    value = SupConLoss(0.1, block_size=block_size)(f, labels)
    ref = reference.sup_con(f, labels, 0.1)
    torch.testing.assert_close(value.double(), ref, atol=1e-5, rtol=1e-5)
    (grad,) = torch.autograd.grad(value, f)
    (ref_grad,) = torch.autograd.grad(ref, f)
    torch.testing.assert_close(grad.double(), ref_grad.double(), atol=1e-6, rtol=1e-5)


def test_equals_pytorch_metric_learning():
    f = _features(n=12, v=2, seed=1)
    labels = torch.randint(0, 4, (12,), generator=torch.Generator().manual_seed(1))
    value = SupConLoss(0.07)(f, labels)
    flat = f.transpose(0, 1).reshape(24, -1)  # PML takes a flat batch with repeated labels
    ref = PMLSupCon(temperature=0.07)(flat, labels.repeat(2))
    torch.testing.assert_close(value, ref, atol=1e-6, rtol=1e-5)
    g, r = torch.autograd.grad(value, f)[0], torch.autograd.grad(ref, f)[0]
    torch.testing.assert_close(g, r, atol=1e-6, rtol=1e-5)


def test_without_labels_is_nt_xent():
    f = _features(n=8, v=2, seed=2)
    torch.testing.assert_close(SupConLoss(0.2)(f), InfoNCELoss(0.2)(f[:, 0], f[:, 1]))


def test_anchors_without_positives_are_excluded_not_nan():
    f = _features(n=4, v=1, seed=3)
    # samples 2 and 3 have no positive; only the 0-1 pair counts
    value = SupConLoss(0.1)(f, torch.tensor([7, 7, 1, 2]))
    ref = reference.sup_con(f, torch.tensor([7, 7, 1, 2]), 0.1)
    torch.testing.assert_close(value.double(), ref, atol=1e-5, rtol=1e-5)
    # no positive at all: a zero loss with a finite (zero) gradient
    lonely = SupConLoss(0.1)(f, torch.arange(4))
    assert lonely.item() == 0.0
    assert torch.isfinite(torch.autograd.grad(lonely, f)[0]).all()


def test_low_temperature_and_autocast_are_finite():
    f = _features(n=16, v=2, seed=4)
    labels = torch.arange(16) % 3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = SupConLoss(0.01)(f.bfloat16(), labels)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value = SupConLoss(0.01)(f, labels)
    ref = reference.sup_con(f, labels, 0.01)
    torch.testing.assert_close(value.double(), ref, atol=1e-4, rtol=1e-5)


def test_bad_input():
    f = _features(n=4)
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        SupConLoss()(f, torch.arange(5))
    with pytest.raises(ValueError, match="features must have 3 dimensions"):
        SupConLoss()(torch.randn(2, 2, 2, 2))
    with pytest.raises(ValueError, match="at least 2 views"):
        SupConLoss()(torch.randn(1, 1, 3))
    with pytest.raises(ValueError, match="integer class ids"):
        SupConLoss()(f, torch.rand(4))
    with pytest.raises(ValueError, match="non-finite"):
        SupConLoss()(torch.full((3, 2, 2), float("inf")))
