"""VICRegLoss against a float64 loop reference and lightly, properties, validation and 2-process gather."""

from __future__ import annotations

import os
from datetime import timedelta

import lightly.loss as lightly_loss
import pytest
import torch
import torch.distributed as dist

from contrastkit.losses.vicreg import VICRegLoss
from tests.losses.multiprocess import run_processes


def invariance_ref(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    n, d = z_a.shape
    return sum(((z_a[k, i] - z_b[k, i]) ** 2 for k in range(n) for i in range(d)), torch.zeros(())) / (n * d)


def var_cov_ref(z: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 loops: mean hinge on the unbiased std, and squared off-diagonal unbiased covariance / D."""
    n, d = z.shape
    zc = z - z.sum(0) / n
    var_term = sum(torch.relu(1 - torch.sqrt((zc[:, i] ** 2).sum() / (n - 1) + eps)) for i in range(d)) / d
    cov_term = sum(((zc[:, i] * zc[:, j]).sum() / (n - 1)) ** 2 for i in range(d) for j in range(d) if i != j)
    return var_term, cov_term / d


def reg_ref(z_a, z_b, mu, nu, eps):
    (va, ca), (vb, cb) = var_cov_ref(z_a, eps), var_cov_ref(z_b, eps)
    return mu * (va + vb) / 2 + nu * (ca + cb)


def views(n: int = 10, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.3, 2.0, d)  # some dimensions below the std hinge at 1, some above
    z_a = torch.randn(n, d, generator=g) * scale
    z_b = z_a + 0.5 * torch.randn(n, d, generator=g) * scale
    return z_a, z_b


def grads(fn, z_a, z_b):
    a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    loss = fn(a, b)
    return (loss, *torch.autograd.grad(loss, (a, b)))


@pytest.mark.parametrize("lam, mu, nu, eps", [(25.0, 25.0, 1.0, 1e-4), (1.0, 3.0, 0.5, 1e-2)])
def test_value_and_gradients_match_float64_reference(lam, mu, nu, eps):
    z_a, z_b = views()
    out = grads(VICRegLoss(lambda_=lam, mu=mu, nu=nu, eps=eps), z_a, z_b)
    assert out[0].dtype == torch.float32
    ref = grads(lambda a, b: lam * invariance_ref(a, b) + reg_ref(a, b, mu, nu, eps), z_a.double(), z_b.double())
    for got, want in zip(out, ref, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lam, mu, nu, eps", [(25.0, 25.0, 1.0, 1e-4), (1.0, 3.0, 0.5, 1e-2)])
def test_matches_lightly(lam, mu, nu, eps):
    z_a, z_b = views(n=32, d=16, seed=1)
    ours = grads(VICRegLoss(lambda_=lam, mu=mu, nu=nu, eps=eps), z_a, z_b)
    theirs = grads(lightly_loss.VICRegLoss(lambda_param=lam, mu_param=mu, nu_param=nu, eps=eps), z_a, z_b)
    for got, want in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_zero_for_identical_whitened_views_and_hinge_for_collapse():
    n, d = 64, 8
    x = torch.randn(n, d, dtype=torch.float64)
    q, _ = torch.linalg.qr(x - x.mean(0))  # orthonormal, zero-mean columns
    z = (q * (n - 1) ** 0.5).float()  # unbiased variance 1, no covariance
    assert VICRegLoss()(z, z.clone()).item() < 1e-4
    collapsed = torch.full((n, d), 3.0)  # every term but the variance hinge is 0
    expected = 25.0 * (1 - 1e-4**0.5)
    torch.testing.assert_close(VICRegLoss()(collapsed, collapsed).item(), expected, rtol=1e-6, atol=1e-6)


def test_gather_outside_process_group_is_identity():
    z_a, z_b = views()
    assert VICRegLoss(gather_distributed=True)(z_a, z_b).item() == VICRegLoss()(z_a, z_b).item()


def test_computes_in_float32_under_bf16_autocast():
    layer = torch.nn.Linear(5, 16)
    x_a, x_b = views(n=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z_a, z_b = layer(x_a), layer(x_b)  # (32, 16) bf16
        loss = VICRegLoss()(z_a, z_b)
    assert z_a.dtype == torch.bfloat16 and loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(loss, VICRegLoss()(z_a.float(), z_b.float()), rtol=1e-6, atol=1e-6)
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()


@pytest.mark.parametrize(
    "z_a, z_b, match",
    [
        (torch.randn(8, 2, 3), torch.randn(8, 2, 3), "z_a must have 2 dimensions"),
        (torch.randn(8, 4), torch.randn(7, 4), "z_a and z_b must have matching shapes"),
        (torch.randn(8, 4).half(), torch.randn(8, 4), "z_a and z_b must have the same dtype"),
        (torch.randn(8, 4), [[0.0] * 4] * 8, "z_b must be a torch.Tensor"),
        (torch.tensor([[float("inf")] * 4] * 8), torch.randn(8, 4), "z_a contains 32 non-finite"),
        (torch.randn(1, 4), torch.randn(1, 4), r"z_a needs at least 2 samples.*\(1, 4\)"),
    ],
)
def test_bad_inputs_raise(z_a, z_b, match):
    with pytest.raises(ValueError, match=match):
        VICRegLoss()(z_a, z_b)


def test_bad_arguments_raise_and_check_finite_can_be_skipped():
    for name in ("lambda_", "mu", "nu", "eps"):
        with pytest.raises(ValueError, match=f"{name} must be >= 0"):
            VICRegLoss(**{name: -1.0})
    z = torch.randn(8, 4)
    z[0, 0] = float("nan")
    assert torch.isnan(VICRegLoss(check_finite=False)(z, z))


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )
    try:
        z_a, z_b = views(n=11)
        rows = slice(0, 5) if rank == 0 else slice(5, 11)  # unequal local batches
        loss, ga, gb = grads(VICRegLoss(gather_distributed=True), z_a[rows], z_b[rows])
        torch.save({"loss": loss.detach(), "ga": ga, "gb": gb}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _run_two_processes(tmp_path) -> None:
    run_processes(_worker, (2, str(tmp_path / "init"), str(tmp_path)))


def test_two_processes_local_invariance_global_variance_covariance(tmp_path):
    _run_two_processes(tmp_path)
    z_a, z_b = views(n=11)
    z_a, z_b = z_a.double(), z_b.double()
    _, reg_ga, reg_gb = grads(lambda a, b: reg_ref(a, b, 25.0, 1.0, 1e-4), z_a, z_b)
    for rank, rows in ((0, slice(0, 5)), (1, slice(5, 11))):
        out = torch.load(tmp_path / f"{rank}.pt", weights_only=True)
        inv, inv_ga, inv_gb = grads(lambda a, b: 25.0 * invariance_ref(a, b), z_a[rows], z_b[rows])
        want = inv + reg_ref(z_a, z_b, 25.0, 1.0, 1e-4)
        torch.testing.assert_close(out["loss"].double(), want, rtol=1e-5, atol=1e-6)
        # gathered terms: W x the global gradient on this process's rows (DDP divides by W)
        torch.testing.assert_close(out["ga"].double(), inv_ga + 2 * reg_ga[rows], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out["gb"].double(), inv_gb + 2 * reg_gb[rows], rtol=1e-5, atol=1e-6)
