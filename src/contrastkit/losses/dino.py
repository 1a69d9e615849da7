"""DINO: self-distillation with a centred, sharpened teacher over multiple crops."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.losses.distributed import is_distributed
from contrastkit.losses.validation import check_embeddings, check_finite, check_same, check_temperature


def _stack_crops(name: str, out: Tensor | Sequence[Tensor], out_dim: int) -> Tensor:
    """Validate a list of ``(B, out_dim)`` crops (or an ``(n_crops, B, out_dim)`` tensor) and stack it."""
    if isinstance(out, Tensor):
        check_embeddings(name, out, dim=3)
        stacked = out  # (n_crops, B, out_dim)
    elif isinstance(out, (list, tuple)):
        if len(out) == 0:
            raise ValueError(f"{name} must hold at least one crop, got an empty {type(out).__name__}")
        for i, x in enumerate(out):
            check_embeddings(f"{name}[{i}]", x)
            check_same(f"{name}[0]", out[0], f"{name}[{i}]", x)
        stacked = torch.stack(list(out))  # (n_crops, B, out_dim)
    else:
        raise ValueError(f"{name} must be a list of tensors or a 3-D tensor, got {type(out).__name__}")
    if stacked.shape[0] == 0 or stacked.shape[1] == 0:
        raise ValueError(f"{name} needs at least one crop of one sample, got shape {tuple(stacked.shape)}")
    if stacked.shape[-1] != out_dim:
        raise ValueError(f"{name} must have last dimension out_dim={out_dim}, got {tuple(stacked.shape)}")
    return stacked


class DINOLoss(nn.Module):
    """DINO self-distillation loss with teacher centring and temperature warm-up.

    Caron, Touvron, Misra, Jégou, Mairal, Bojanowski & Joulin 2021, "Emerging Properties in Self-Supervised
    Vision Transformers" (arXiv 2104.14294), as in the authors' reference code (facebookresearch/dino). For
    every pair (teacher crop i, student crop j) with ``i != j`` the loss is the cross-entropy
    ``-sum_d softmax((t_i - center) / t_temp)_d * log_softmax(s_j / student_temp)_d``, averaged over the batch
    and then over the pairs. The first ``len(teacher_out)`` student crops must be the global crops in the same
    order as ``teacher_out`` (pair i == j is skipped); the rest are local crops. The teacher side is detached.

    After each call the ``center`` buffer ``(1, out_dim)`` is updated by EMA with the batch mean of the
    teacher outputs (averaged over all processes when ``torch.distributed`` runs more than one):
    ``center = center_momentum * center + (1 - center_momentum) * mean``. As in the reference code and
    lightly, this happens on every call, in eval mode too. Softmaxes are taken in float32 even under autocast.

    Teacher temperature at ``epoch`` follows the reference code's ``np.linspace(warmup_teacher_temp,
    teacher_temp, warmup_epochs)``: ``warmup_teacher_temp + (teacher_temp - warmup_teacher_temp) *
    epoch / (warmup_epochs - 1)`` for ``epoch < warmup_epochs`` (capped at ``teacher_temp``; fractional epochs
    interpolate), ``teacher_temp`` afterwards.

    Args:
        out_dim: dimension ``K`` of the DINO head output (prototypes).
        teacher_temp: teacher temperature after warm-up (paper: 0.04 to 0.07).
        student_temp: student temperature.
        center_momentum: EMA momentum of the centre, in ``[0, 1]``.
        warmup_teacher_temp: teacher temperature at epoch 0.
        warmup_epochs: number of warm-up epochs; 0 uses ``teacher_temp`` throughout.
        check_finite: refuse NaN/inf inputs (one extra pass; set False for speed).
    """

    center: Tensor

    def __init__(
        self,
        out_dim: int,
        teacher_temp: float = 0.04,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
        warmup_teacher_temp: float = 0.04,
        warmup_epochs: int = 0,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim < 1:
            raise ValueError(f"out_dim must be an int >= 1, got {out_dim!r}")
        if not 0.0 <= center_momentum <= 1.0:
            raise ValueError(f"center_momentum must be in [0, 1], got {center_momentum!r}")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be an int >= 0, got {warmup_epochs!r}")
        self.out_dim = out_dim
        self.teacher_temp = check_temperature(teacher_temp, "teacher_temp")
        self.student_temp = check_temperature(student_temp, "student_temp")
        self.warmup_teacher_temp = check_temperature(warmup_teacher_temp, "warmup_teacher_temp")
        self.center_momentum = float(center_momentum)
        self.warmup_epochs = warmup_epochs
        self.check_finite = check_finite
        self.register_buffer("center", torch.zeros(1, out_dim))

    def teacher_temperature(self, epoch: float) -> float:
        """Teacher temperature at ``epoch`` (see the class docstring)."""
        if not epoch >= 0 or epoch == float("inf"):
            raise ValueError(f"epoch must be a finite number >= 0, got {epoch!r}")
        if epoch >= self.warmup_epochs:
            return self.teacher_temp
        frac = min(epoch / (self.warmup_epochs - 1), 1.0) if self.warmup_epochs > 1 else 0.0
        return self.warmup_teacher_temp + (self.teacher_temp - self.warmup_teacher_temp) * frac

    def forward(
        self, student_out: Tensor | Sequence[Tensor], teacher_out: Tensor | Sequence[Tensor], epoch: float = 0
    ) -> Tensor:
        """Compute the loss and update the centre.

        Args:
            student_out: ``n_s`` student outputs ``(B, out_dim)``, one per crop (global crops first), or an
                ``(n_s, B, out_dim)`` tensor.
            teacher_out: ``n_t <= n_s`` teacher outputs ``(B, out_dim)`` for the global crops, or an
                ``(n_t, B, out_dim)`` tensor.
            epoch: current (possibly fractional) epoch, for the teacher-temperature warm-up.

        Returns:
            Scalar float32 loss.
        """
        s = _stack_crops("student_out", student_out, self.out_dim)  # (S, B, K)
        t = _stack_crops("teacher_out", teacher_out, self.out_dim)  # (T, B, K)
        n_s, n_t = s.shape[0], t.shape[0]
        if s.shape[1] != t.shape[1]:
            raise ValueError(
                f"student_out and teacher_out must have the same batch size, got crops of shape "
                f"{tuple(s.shape[1:])} and {tuple(t.shape[1:])}"
            )
        if n_s < n_t:
            raise ValueError(f"student_out needs as many crops as teacher_out, got {n_s} < {n_t}")
        if n_s < 2:
            raise ValueError("student_out needs at least 2 crops (same-crop pairs are skipped), got 1")
        if self.check_finite:
            check_finite("student_out", s)
            check_finite("teacher_out", t)
        temp = self.teacher_temperature(epoch)
        with torch.autocast(device_type=s.device.type, enabled=False):
            t = t.detach().float()  # (T, B, K)
            center = self.center.to(device=t.device, dtype=torch.float32)  # (1, K)
            q = F.softmax((t - center) / temp, dim=-1)  # (T, B, K)
            log_p = F.log_softmax(s.float() / self.student_temp, dim=-1)  # (S, B, K)
            ce = -torch.einsum("tbk,sbk->ts", q, log_p) / s.shape[1]  # (T, S) batch-mean cross-entropy
            pairs = ~torch.eye(n_t, n_s, dtype=torch.bool, device=ce.device)  # (T, S) skip same crop
            loss = ce[pairs].mean()
        self._update_center(t)
        return loss

    @torch.no_grad()
    def _update_center(self, t: Tensor) -> None:
        """EMA of the centre towards the mean teacher output ``t`` ``(T, B, K)`` over crops and processes."""
        total = torch.cat([t.sum(dim=(0, 1)), t.new_tensor([t.shape[0] * t.shape[1]])])  # (K + 1,)
        if is_distributed():
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
        batch_center = (total[:-1] / total[-1]).view(1, -1)  # (1, K)
        m = self.center_momentum
        new = self.center.float() * m + batch_center.to(self.center.device) * (1.0 - m)  # (1, K)
        self.center.copy_(new)
