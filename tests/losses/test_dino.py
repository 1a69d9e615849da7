"""DINOLoss against a float64 loop reference and lightly, centre EMA, warm-up, precision and validation."""

from __future__ import annotations

import itertools
import math
import os
from datetime import timedelta

import lightly.loss as lightly_loss
import numpy as np
import pytest
import torch
import torch.distributed as dist

from contrastkit.losses.dino import DINOLoss
from tests.losses.multiprocess import run_processes

K, B = 10, 6


def reference(student, teacher, center, t_temp, s_temp):
    """Float64 loops over (teacher crop i, student crop j != i): batch-mean cross-entropy, mean over pairs."""
    total, pairs = torch.zeros((), dtype=torch.float64), 0
    for i, t in enumerate(teacher):
        x = (t - center) / t_temp
        e = torch.exp(x - x.max(dim=-1, keepdim=True).values)
        q = e / e.sum(dim=-1, keepdim=True)  # (B, K) teacher probabilities
        for j, s in enumerate(student):
            if i == j:
                continue
            y = s / s_temp
            log_p = y - y.max(-1, keepdim=True).values
            log_p = log_p - torch.log(torch.exp(log_p).sum(-1, keepdim=True))  # (B, K)
            total = total - sum((q[b] * log_p[b]).sum() for b in range(t.shape[0])) / t.shape[0]
            pairs += 1
    return total / pairs


def crops(n: int, seed: int, b: int = B, scale: float = 1.0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, K, generator=g) * scale for _ in range(n)]


def grad_student(fn, student, teacher):
    student = [s.clone().requires_grad_() for s in student]
    loss = fn(student, teacher)
    return (loss, *torch.autograd.grad(loss, student))


def test_value_and_student_gradients_match_float64_reference():
    student, teacher = crops(4, seed=0), crops(2, seed=1)  # 2 global + 2 local student crops
    teacher = [t.requires_grad_() for t in teacher]
    loss_fn = DINOLoss(K, teacher_temp=0.07, student_temp=0.1, warmup_teacher_temp=0.03, warmup_epochs=5)
    center = torch.randn(1, K) * 0.5
    loss_fn.center.copy_(center)
    ours = grad_student(lambda s, t: loss_fn(s, t, epoch=2), student, teacher)
    assert ours[0].dtype == torch.float32 and ours[0].shape == ()
    t64 = [t.detach().double() for t in teacher]
    ref = grad_student(lambda s, t: reference(s, t, center.double(), 0.05, 0.1), [s.double() for s in student], t64)
    for got, want in zip(ours, ref, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    # the teacher side is detached
    loss = loss_fn([s.requires_grad_() for s in student], teacher)
    assert torch.autograd.grad(loss, teacher, allow_unused=True) == (None, None)


@pytest.mark.parametrize("n_student", [2, 5])
def test_matches_lightly_over_successive_calls(n_student):
    kw = dict(teacher_temp=0.06, student_temp=0.2, center_momentum=0.8)
    ours = DINOLoss(K, warmup_teacher_temp=0.02, warmup_epochs=3, **kw)
    theirs = lightly_loss.DINOLoss(K, warmup_teacher_temp=0.02, warmup_teacher_temp_epochs=3, **kw)
    for step, epoch in enumerate([0, 1, 4]):  # warm-up, warm-up, constant; the centre moves each call
        student, teacher = crops(n_student, seed=10 + step), crops(2, seed=20 + step, scale=2.0)
        a = grad_student(lambda s, t, e=epoch: ours(s, t, epoch=e), student, teacher)
        b = grad_student(lambda s, t, e=epoch: theirs(t, s, epoch=e), student, teacher)
        for got, want in zip(a, b, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours.center, theirs.center.view(1, K), rtol=1e-6, atol=1e-7)


def test_center_is_ema_of_teacher_batch_mean_and_moves_toward_it():
    loss_fn = DINOLoss(K, center_momentum=0.9)
    assert loss_fn.state_dict()["center"].shape == (1, K)
    teacher = crops(2, seed=3, scale=3.0)
    mean = torch.cat(teacher).mean(0, keepdim=True)  # (1, K) over crops and rows
    loss_fn(crops(3, seed=4), teacher)
    torch.testing.assert_close(loss_fn.center, 0.1 * mean)
    distances = []
    for _ in range(5):
        loss_fn(crops(3, seed=4), teacher)
        distances.append((loss_fn.center - mean).norm().item())
    assert all(d1 < d0 for d0, d1 in itertools.pairwise(distances))
    assert math.isclose(distances[-1], 0.9**6 * mean.norm().item(), rel_tol=1e-4)


def test_teacher_temperature_schedule():
    loss_fn = DINOLoss(K, teacher_temp=0.07, warmup_teacher_temp=0.04, warmup_epochs=4)
    expected = np.linspace(0.04, 0.07, 4)  # the reference code's schedule
    for epoch in range(4):
        assert math.isclose(loss_fn.teacher_temperature(epoch), expected[epoch], rel_tol=1e-12)
    assert math.isclose(loss_fn.teacher_temperature(1.5), 0.055, rel_tol=1e-12)
    assert loss_fn.teacher_temperature(3.5) == loss_fn.teacher_temperature(50) == 0.07
    assert DINOLoss(K, teacher_temp=0.07, warmup_teacher_temp=0.04).teacher_temperature(0) == 0.07
    # the loss uses it: epoch 0 of the warm-up equals a constant temperature of 0.04
    student, teacher = crops(3, seed=5), crops(2, seed=6, scale=0.1)
    torch.testing.assert_close(loss_fn(student, teacher, epoch=0), DINOLoss(K)(student, teacher))


def test_tensor_inputs_equal_list_inputs():
    student, teacher = crops(4, seed=7), crops(2, seed=8)
    torch.testing.assert_close(DINOLoss(K)(torch.stack(student), torch.stack(teacher)), DINOLoss(K)(student, teacher))


def test_fp16_and_bf16_autocast_are_finite_and_computed_in_float32():
    student, teacher = crops(3, seed=9, scale=5e3), crops(2, seed=10, scale=5e3)  # / 0.04 overflows fp16
    half = DINOLoss(K)([s.half() for s in student], [t.half() for t in teacher])
    assert half.dtype == torch.float32 and torch.isfinite(half)
    head = torch.nn.Linear(8, K)
    x = torch.randn(3, B, 8) * 10
    loss_fn = DINOLoss(K)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(x)  # (3, B, K) bf16
        loss = loss_fn(list(out), list(out[:2].detach()))
    assert out.dtype == torch.bfloat16 and loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(loss, DINOLoss(K)(list(out.float()), list(out[:2].float())), rtol=1e-6, atol=1e-6)
    loss.backward()
    assert torch.isfinite(head.weight.grad).all() and torch.isfinite(loss_fn.center).all()


@pytest.mark.parametrize(
    "student, teacher, match",
    [
        (
            crops(3, 0),
            [torch.randn(B, K + 1)] * 2,
            r"teacher_out must have last dimension out_dim=10.*\(2, 6, 11\)",
        ),
        ([], crops(2, 0), "student_out must hold at least one crop"),
        (crops(3, 0), [], "teacher_out must hold at least one crop"),
        (
            [*crops(2, 0), torch.randn(B + 1, K)],
            crops(2, 0),
            r"student_out\[0\] and student_out\[2\] must have",
        ),
        (crops(3, 0), crops(2, 0, b=B + 1), "same batch size"),
        (crops(2, 0), crops(3, 0), "needs as many crops as teacher_out, got 2 < 3"),
        (crops(1, 0), crops(1, 0), "needs at least 2 crops"),
        (crops(3, 0), [torch.full((B, K), float("nan"))] * 2, "teacher_out contains 120 non-finite"),
        (torch.randn(B, K), crops(2, 0), "student_out must have 3 dimensions"),
        (crops(3, 0), "teacher", "teacher_out must be a list of tensors"),
        ([torch.zeros(B, K, dtype=torch.long)] * 3, crops(2, 0), r"student_out\[0\] must be a floating"),
    ],
)
def test_bad_inputs_raise_and_leave_center_untouched(student, teacher, match):
    loss_fn = DINOLoss(K)
    with pytest.raises(ValueError, match=match):
        loss_fn(student, teacher)
    assert (loss_fn.center == 0).all()


def test_bad_arguments_raise_and_check_finite_can_be_skipped():
    bad = [
        (dict(out_dim=0), "out_dim"),
        (dict(out_dim=K, teacher_temp=0.0), "teacher_temp"),
        (dict(out_dim=K, student_temp=-1.0), "student_temp"),
        (dict(out_dim=K, warmup_teacher_temp=float("inf")), "warmup_teacher_temp"),
        (dict(out_dim=K, center_momentum=1.5), "center_momentum"),
        (dict(out_dim=K, warmup_epochs=-1), "warmup_epochs"),
    ]
    for kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            DINOLoss(**kwargs)
    with pytest.raises(ValueError, match="epoch"):
        DINOLoss(K)(crops(2, 0), crops(2, 0), epoch=-1)
    student = crops(2, 0)
    student[1][0, 0] = float("nan")
    assert torch.isnan(DINOLoss(K, check_finite=False)(student, crops(2, 0)))


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )
    try:
        b = 3 if rank == 0 else 5  # unequal local batches
        loss_fn = DINOLoss(K, center_momentum=0.5)
        loss = loss_fn(crops(3, seed=rank, b=b), crops(2, seed=100 + rank, b=b))
        torch.save({"loss": loss, "center": loss_fn.center}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _run_two_processes(tmp_path) -> None:
    run_processes(_worker, (2, str(tmp_path / "init"), str(tmp_path)))


def test_two_processes_average_the_center_over_the_global_batch(tmp_path):
    _run_two_processes(tmp_path)
    teacher_rows = torch.cat([torch.cat(crops(2, seed=100 + r, b=b)) for r, b in ((0, 3), (1, 5))])  # (16, K)
    for rank, b in ((0, 3), (1, 5)):
        out = torch.load(tmp_path / f"{rank}.pt", weights_only=True)
        torch.testing.assert_close(out["center"], 0.5 * teacher_rows.mean(0, keepdim=True))
        # the loss itself stays local
        torch.testing.assert_close(out["loss"], DINOLoss(K)(crops(3, seed=rank, b=b), crops(2, seed=100 + rank, b=b)))
