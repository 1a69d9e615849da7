"""BarlowTwinsLoss vs a float64 BatchNorm1d-based reference, properties, validation and 2-process gather."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist

from contrastkit.losses.barlow_twins import BarlowTwinsLoss
from tests.losses.multiprocess import run_processes


def reference(z_a: torch.Tensor, z_b: torch.Tensor, lambda_: float, eps: float) -> torch.Tensor:
    """Float64 reference: BatchNorm1d(affine=False) in training mode, then explicit loops over (i, j)."""
    n, d = z_a.shape
    bn = torch.nn.BatchNorm1d(d, eps=eps, affine=False, dtype=torch.float64).train()
    a, b = bn(z_a), bn(z_b)
    loss = torch.zeros((), dtype=torch.float64)
    for i in range(d):
        for j in range(d):
            c_ij = (a[:, i] * b[:, j]).sum() / n
            loss = loss + ((1 - c_ij) ** 2 if i == j else lambda_ * c_ij**2)
    return loss


def views(n: int = 12, d: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z_a = torch.randn(n, d, generator=g) * 3 + 1
    z_b = 0.7 * z_a + torch.randn(n, d, generator=g)  # correlated views
    return z_a, z_b


@pytest.mark.parametrize("lambda_, eps", [(5e-3, 1e-5), (0.5, 1e-3), (0.0, 1e-8)])
def test_value_and_gradients_match_float64_reference(lambda_, eps):
    z_a, z_b = views()
    a = z_a.clone().requires_grad_()
    b = z_b.clone().requires_grad_()
    loss = BarlowTwinsLoss(lambda_=lambda_, eps=eps)(a, b)
    assert loss.dtype == torch.float32
    ga, gb = torch.autograd.grad(loss, (a, b))
    a64 = z_a.double().requires_grad_()
    b64 = z_b.double().requires_grad_()
    ref = reference(a64, b64, lambda_, eps)
    ra, rb = torch.autograd.grad(ref, (a64, b64))
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ga.double(), ra, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gb.double(), rb, rtol=1e-4, atol=1e-6)


def test_zero_for_identical_whitened_views():
    n, d = 64, 8
    x = torch.randn(n, d, dtype=torch.float64)
    q, _ = torch.linalg.qr(x - x.mean(0))  # orthonormal, zero-mean columns
    z = (q * n**0.5).float()  # biased variance 1, uncorrelated dimensions: c = I / (1 + eps)
    assert BarlowTwinsLoss()(z, z.clone()).item() < 1e-6
    # independent views are far from the optimum: each diagonal term is about 1
    assert BarlowTwinsLoss()(z, torch.randn(n, d)).item() > 0.5 * d


def test_invariant_to_per_dimension_affine_maps():
    z_a, z_b = views(n=32)
    scale, shift = torch.rand(6) * 5 + 0.5, torch.randn(6) * 10
    loss_fn = BarlowTwinsLoss()
    torch.testing.assert_close(loss_fn(z_a * scale + shift, z_b), loss_fn(z_a, z_b), rtol=1e-4, atol=1e-5)


def test_gather_outside_process_group_is_identity():
    z_a, z_b = views()
    assert BarlowTwinsLoss(gather_distributed=True)(z_a, z_b).item() == BarlowTwinsLoss()(z_a, z_b).item()


def test_computes_in_float32_under_bf16_autocast():
    layer = torch.nn.Linear(6, 16)
    x_a, x_b = views(n=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z_a, z_b = layer(x_a), layer(x_b)  # (32, 16) bf16
        loss = BarlowTwinsLoss()(z_a, z_b)
    assert z_a.dtype == torch.bfloat16 and loss.dtype == torch.float32 and torch.isfinite(loss)
    # equal to the float32 computation on the same values: autocast was switched off inside
    torch.testing.assert_close(loss, BarlowTwinsLoss()(z_a.float(), z_b.float()), rtol=1e-6, atol=1e-6)
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()


@pytest.mark.parametrize(
    "z_a, z_b, match",
    [
        (torch.randn(8), torch.randn(8), "z_a must have 2 dimensions"),
        (torch.randn(8, 4), torch.randn(8, 5), "z_a and z_b must have matching shapes"),
        (torch.randn(8, 4), torch.randn(8, 4).double(), "z_a and z_b must have the same dtype"),
        (torch.ones(8, 4, dtype=torch.long), torch.ones(8, 4, dtype=torch.long), "z_a must be a floating"),
        (torch.randn(8, 4), torch.tensor([[float("nan")] * 4] * 8), "z_b contains 32 non-finite"),
        (torch.randn(1, 4), torch.randn(1, 4), r"z_a needs at least 2 samples.*\(1, 4\)"),
    ],
)
def test_bad_inputs_raise(z_a, z_b, match):
    with pytest.raises(ValueError, match=match):
        BarlowTwinsLoss()(z_a, z_b)


def test_bad_arguments_raise_and_check_finite_can_be_skipped():
    with pytest.raises(ValueError, match="lambda_"):
        BarlowTwinsLoss(lambda_=-1.0)
    for eps in (0.0, float("nan")):
        with pytest.raises(ValueError, match="eps must be > 0"):
            BarlowTwinsLoss(eps=eps)
    z = torch.randn(8, 4)
    z[0, 0] = float("inf")
    assert not torch.isfinite(BarlowTwinsLoss(check_finite=False)(z, z))


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )
    try:
        z_a, z_b = views(n=11)
        rows = slice(0, 5) if rank == 0 else slice(5, 11)  # unequal local batches
        a, b = z_a[rows].clone().requires_grad_(), z_b[rows].clone().requires_grad_()
        loss = BarlowTwinsLoss(gather_distributed=True)(a, b)
        ga, gb = torch.autograd.grad(loss, (a, b))
        torch.save({"loss": loss.detach(), "ga": ga, "gb": gb}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _run_two_processes(tmp_path) -> None:
    run_processes(_worker, (2, str(tmp_path / "init"), str(tmp_path)))


def test_two_processes_use_global_batch_statistics(tmp_path):
    _run_two_processes(tmp_path)
    z_a, z_b = views(n=11)
    a64, b64 = z_a.double().requires_grad_(), z_b.double().requires_grad_()
    ref = reference(a64, b64, 5e-3, 1e-5)
    ra, rb = torch.autograd.grad(ref, (a64, b64))
    for rank, rows in ((0, slice(0, 5)), (1, slice(5, 11))):
        out = torch.load(tmp_path / f"{rank}.pt", weights_only=True)
        torch.testing.assert_close(out["loss"].double(), ref, rtol=1e-5, atol=1e-6)
        # each process's rows get W x the full-batch gradient; DDP's 1/W averaging makes it exact
        torch.testing.assert_close(out["ga"].double(), 2 * ra[rows], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(out["gb"].double(), 2 * rb[rows], rtol=1e-4, atol=1e-6)
