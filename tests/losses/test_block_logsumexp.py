import pytest
import torch

from contrastkit.losses import block_logsumexp
from contrastkit.losses.block_logsumexp import auto_block_size


def _dense_reference(a, b, scales, exclude, row_labels=None, col_labels=None, mask=None):
    """The same quantity from the whole similarity matrix in float64."""
    sim = a.double() @ b.double().T
    drop = torch.zeros_like(sim, dtype=torch.bool)
    rows = torch.arange(a.shape[0])
    for idx in exclude:
        ok = idx >= 0
        drop[rows[ok], idx[ok]] = True
    if row_labels is not None:
        drop |= row_labels[:, None] == col_labels[None, :]
    if mask is not None:
        drop |= mask
    out = [torch.logsumexp((s * sim).masked_fill(drop, float("-inf")), 1) for s in scales]
    return torch.stack(out, 1), (~drop).sum(1)


@pytest.mark.parametrize("block_size", [1, 3, 64])
def test_values_and_all_gradients_match_dense(block_size):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(7, 4, generator=g, dtype=torch.float64).float().requires_grad_()
    b = torch.randn(9, 4, generator=g).requires_grad_()
    scales = torch.tensor([2.0, 0.5], requires_grad=True)
    exclude = [torch.tensor([0, 1, 2, 3, 4, 5, 6]), torch.tensor([8, -1, 0, -1, 3, 3, 2])]
    rl, cl = torch.randint(0, 3, (7,), generator=g), torch.randint(0, 3, (9,), generator=g)
    mask = torch.rand(7, 9, generator=g) < 0.2
    lse, counts = block_logsumexp(a, b, scales, exclude, rl, cl, mask, block_size=block_size)
    ref, ref_counts = _dense_reference(a, b, scales, exclude, rl, cl, mask)
    assert torch.equal(counts, ref_counts)
    finite = torch.isfinite(ref)
    assert torch.equal(torch.isfinite(lse), finite)
    torch.testing.assert_close(lse[finite].double(), ref[finite], atol=1e-5, rtol=1e-5)
    weights = torch.randn(7, 2, generator=g)
    grads = torch.autograd.grad((lse[finite] * weights[finite]).sum(), [a, b, scales])
    ref_grads = torch.autograd.grad((ref[finite] * weights[finite].double()).sum(), [a, b, scales])
    for ours, theirs in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(ours.double(), theirs.double(), atol=1e-5, rtol=1e-5)


def test_same_tensor_as_anchor_and_candidate():
    x = torch.randn(6, 3, requires_grad=True)
    lse, _ = block_logsumexp(x, x, 3.0, [torch.arange(6)], block_size=2)
    (g,) = torch.autograd.grad(lse.sum(), x)
    x64 = x.detach().double().requires_grad_()
    ref = torch.logsumexp((3.0 * x64 @ x64.T).fill_diagonal_(float("-inf")), 1)
    (rg,) = torch.autograd.grad(ref.sum(), x64)
    torch.testing.assert_close(lse.double(), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g.double(), rg, atol=1e-5, rtol=1e-5)


def test_auto_block_size_bounds_tile():
    assert auto_block_size(16384, 16384) * 16384 <= 1 << 22
    assert auto_block_size(10, 10) == 10
    with pytest.raises(ValueError, match="block_size"):
        block_logsumexp(torch.randn(2, 2), torch.randn(2, 2), 1.0, block_size=0)
