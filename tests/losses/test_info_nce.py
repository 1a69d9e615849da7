import math

import pytest
import torch
from lightly.loss import NTXentLoss as LightlyNTXent
from pytorch_metric_learning.losses import NTXentLoss as PMLNTXent

from contrastkit.losses import InfoNCELoss
from tests.losses import reference


def _views(n=12, d=6, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_()
    b = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_()
    return a, b


def _value_and_grads(loss_fn, *inputs):
    value = loss_fn(*inputs)
    return value, torch.autograd.grad(value, inputs)


def _assert_close(ours, ref, atol=1e-6, rtol=1e-5):
    value, grads = ours
    ref_value, ref_grads = ref
    torch.testing.assert_close(value.double(), ref_value.double(), atol=atol, rtol=rtol)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g.double(), r.double(), atol=atol, rtol=rtol)


@pytest.mark.parametrize("temperature", [0.07, 0.5])
@pytest.mark.parametrize("block_size", [None, 1, 5])
def test_nt_xent_equals_lightly_and_pml(temperature, block_size):
    a, b = _views()
    n = a.shape[0]
    ours = _value_and_grads(InfoNCELoss(temperature, block_size=block_size), a, b)
    _assert_close(ours, _value_and_grads(LightlyNTXent(temperature), a, b))
    pml = PMLNTXent(temperature)
    _assert_close(ours, _value_and_grads(lambda x, y: pml(torch.cat([x, y]), torch.arange(n).repeat(2)), a, b))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"decoupled": True},
        {"tau_plus": 0.1},
        {"hard_negative_beta": 1.0},
        {"tau_plus": 0.1, "hard_negative_beta": 0.5},
        {"tau_plus": 0.3, "decoupled": True},
    ],
)
@pytest.mark.parametrize("with_labels", [False, True])
def test_variants_equal_float64_formula(kwargs, with_labels):
    a, b = _views(n=10, seed=1)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 3, 3, 4, 0]) if with_labels else None
    t = 0.5
    ours = _value_and_grads(lambda x, y: InfoNCELoss(t, block_size=3, **kwargs)(x, y, labels=labels), a, b)
    ref = _value_and_grads(
        lambda x, y: reference.nt_xent(
            x,
            y,
            t,
            labels,
            tau_plus=kwargs.get("tau_plus", 0.0),
            beta=kwargs.get("hard_negative_beta", 0.0),
            decoupled=kwargs.get("decoupled", False),
        ),
        a,
        b,
    )
    _assert_close(ours, ref, atol=2e-6, rtol=2e-5)


def test_debiased_floor_is_active_and_exact():
    # A large tau_plus drives the estimator below its floor n * e^{-1/t}; the clamp must match the paper's.
    a, b = _views(n=6, seed=2)
    ours = _value_and_grads(InfoNCELoss(0.5, tau_plus=0.9), a, b)
    ref = _value_and_grads(lambda x, y: reference.nt_xent(x, y, 0.5, tau_plus=0.9), a, b)
    _assert_close(ours, ref, atol=2e-6, rtol=2e-5)


def test_mask_equals_labels():
    a, b = _views(n=8, seed=3)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    mask = labels[:, None] == labels[None, :]
    loss = InfoNCELoss(0.2)
    torch.testing.assert_close(loss(a, b, mask=mask), loss(a, b, labels=labels))


def test_labels_remove_only_false_negatives():
    # All-distinct labels change nothing; they are plain NT-Xent.
    a, b = _views(n=8, seed=4)
    loss = InfoNCELoss(0.2)
    torch.testing.assert_close(loss(a, b, labels=torch.arange(8)), loss(a, b))


def test_single_class_batch_gives_zero_not_nan():
    a, b = _views(n=4, seed=5)
    labels = torch.zeros(4, dtype=torch.long)
    for kwargs in ({}, {"decoupled": True}, {"tau_plus": 0.1}):
        value = InfoNCELoss(0.1, **kwargs)(a, b, labels=labels)
        assert value.item() == 0.0
        (grad,) = torch.autograd.grad(value, a)
        assert torch.isfinite(grad).all()


def test_moco_form_equals_formula_and_bank_gets_no_grad():
    g = torch.Generator().manual_seed(6)
    q = torch.randn(5, 4, generator=g, requires_grad=True)
    k = torch.randn(5, 4, generator=g, requires_grad=True)
    bank = torch.randn(9, 4, generator=g, requires_grad=True)
    loss = InfoNCELoss(0.2, block_size=2)
    ours = _value_and_grads(lambda x, y: loss(x, y, negatives=bank), q, k)
    ref = _value_and_grads(lambda x, y: reference.moco(x, y, bank, 0.2), q, k)
    _assert_close(ours, ref)
    loss(q, k, negatives=bank).backward()
    assert bank.grad is None


def test_moco_label_aware_queue():
    g = torch.Generator().manual_seed(7)
    q, k, bank = (
        torch.randn(4, 3, generator=g),
        torch.randn(4, 3, generator=g),
        torch.randn(6, 3, generator=g),
    )
    labels = torch.tensor([0, 1, 2, 3])
    bank_labels = torch.tensor([0, 0, 5, 5, 1, 7])
    value = InfoNCELoss(0.3)(q, k, negatives=bank, labels=labels, negative_labels=bank_labels)
    keep = bank_labels[None, :] != labels[:, None]
    expected = torch.stack([reference.moco(q[i : i + 1], k[i : i + 1], bank[keep[i]], 0.3) for i in range(4)]).mean()
    torch.testing.assert_close(value.double(), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("n", [4, 33])
def test_collapse_gives_log_2n_minus_1(n):
    z = torch.ones(n, 16)
    for t in (0.01, 0.1):
        assert InfoNCELoss(t)(z, z).item() == pytest.approx(math.log(2 * n - 1), rel=1e-5)


def test_zero_vectors_and_low_temperature_are_finite():
    a, b = _views(n=16, seed=8)
    z = torch.zeros(16, 6, requires_grad=True)
    for x, y in ((z, z), (a * 50, b * 50), (a, a)):
        value = InfoNCELoss(0.01)(x, y)
        grads = torch.autograd.grad(value, [x, y], allow_unused=True)
        assert torch.isfinite(value)
        assert all(g is None or torch.isfinite(g).all() for g in grads)
    ours = _value_and_grads(InfoNCELoss(0.01, block_size=7), a, b)
    _assert_close(ours, _value_and_grads(lambda x, y: reference.nt_xent(x, y, 0.01), a, b), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_under_autocast_is_float32_inside(dtype):
    a, b = _views(n=16, seed=9)
    ah, bh = a.detach().to(dtype).requires_grad_(), b.detach().to(dtype).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = InfoNCELoss(0.01)(ah, bh)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    ref = reference.nt_xent(ah.detach(), bh.detach(), 0.01)  # the same half-precision inputs, in float64
    assert value.item() == pytest.approx(ref.item(), rel=1e-4)
    (grad,) = torch.autograd.grad(value, ah)
    assert grad.dtype == dtype and torch.isfinite(grad.float()).all()


def test_bad_input_errors_name_the_argument():
    a, b = _views(n=4)
    loss = InfoNCELoss()
    with pytest.raises(ValueError, match=r"z_a and z_b must have matching shapes.*\(4, 6\).*\(3, 6\)"):
        loss(a, b[:3])
    with pytest.raises(ValueError, match="same dtype"):
        loss(a, b.double())
    with pytest.raises(ValueError, match="at least 2 samples"):
        loss(a[:1], b[:1])
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        InfoNCELoss(temperature=0)
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(temperature=float("nan"))
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        loss(a, b, labels=torch.arange(3))
    nan = a.detach().clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="z_a contains 1 non-finite"):
        loss(nan, b)
    with pytest.raises(ValueError, match="z_b must have 2 dimensions"):
        loss(a, b[None])
    with pytest.raises(ValueError, match="tau_plus"):
        InfoNCELoss(tau_plus=1.0)
    with pytest.raises(ValueError, match="mask must be a bool tensor of shape"):
        loss(a, b, mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="negatives must have the embedding size"):
        loss(a, b, negatives=torch.randn(5, 3))
    with pytest.raises(ValueError, match="negative_labels"):
        loss(a, b, negatives=torch.randn(5, 6), labels=torch.arange(4))
    # opting out of the finiteness check skips the pass (and lets NaN through)
    assert torch.isnan(InfoNCELoss(check_finite=False)(nan, b))
