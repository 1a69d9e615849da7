"""DINO: self-distillation of a momentum teacher into a student over multi-crop views, no labels and no negatives."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from itertools import groupby

import torch
from torch import Tensor, nn

from contrastkit.heads import (
    DINOHead,
    cancel_last_layer_gradients,
    cosine_momentum,
    deactivate_requires_grad,
    update_momentum,
)
from contrastkit.losses import DINOLoss
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method

NUM_GLOBAL = 2  # DINO's global crops, first among the views; the teacher sees only these


def _grouped_features(backbone: nn.Module, views: Sequence[Tensor]) -> Tensor:
    """Backbone features of all views in order ``(V * B, F)``, consecutive views of one size run as one batch."""
    groups = [torch.cat(list(group)) for _, group in groupby(views, key=lambda v: tuple(v.shape[1:]))]
    return torch.cat([backbone(x) for x in groups])  # (V * B, F)


@register_method
class DINO(Method):
    """DINO (Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021, arXiv 2104.14294).

    The student (backbone and :class:`~contrastkit.heads.DINOHead`) sees every crop; the teacher, an exponential
    moving average of the student (momentum ``momentum_start`` rising to ``momentum_end`` on a cosine over the
    run), sees only the two global crops. :class:`~contrastkit.losses.DINOLoss` matches the student's
    distribution of each crop to the centred, sharpened teacher distribution of every other global crop; the
    teacher temperature warms up linearly from ``warmup_teacher_temp`` to ``teacher_temp`` over
    ``warmup_teacher_temp_epochs`` (read from ``self.progress.epoch``). The head's last layer is kept fixed for
    the first ``freeze_last_layer`` epochs (its gradients are dropped in :meth:`before_optimizer_step`).

    As the reference code's ``MultiCropWrapper`` (facebookresearch/dino), consecutive views of the same size go
    through the backbone as one batch (the two global crops together, the local crops together) and the head
    runs once on all of them.

    Views: ``[global_1, global_2, local_1, ..., local_n]`` (``DINOViews`` order), ``n >= 0``, all with the same
    batch size. ``embed`` gives the student backbone's features; the paper evaluates the teacher,
    ``self.teacher_backbone``.

    Defaults are the paper's (ViT-S/16 setting): head 2048-2048-256 then 65536 prototypes, student temperature
    0.1, teacher temperature warmed up from 0.04 to 0.07 over the first 30 epochs, centre momentum 0.9, teacher
    momentum 0.996 -> 1, last layer frozen during the first epoch.

    Args:
        backbone: the encoder, with ``feature_dim``.
        output_dim: number of prototypes ``K`` of the head (65536 in the paper).
        hidden_dim: hidden width of the head's MLP.
        bottleneck_dim: size of the L2-normalised bottleneck before the prototypes.
        num_layers: Linear layers of the head's MLP.
        batch_norm: BatchNorm in the head's MLP (off for ViTs, as the paper).
        norm_last_layer: freeze the weight-norm magnitude of the last layer at 1 (more stable training).
        teacher_temp: teacher temperature after the warm-up.
        warmup_teacher_temp: teacher temperature at epoch 0.
        warmup_teacher_temp_epochs: epochs of linear teacher-temperature warm-up (0: ``teacher_temp`` throughout).
        student_temp: student temperature.
        center_momentum: EMA momentum of the teacher centre.
        momentum_start: teacher EMA momentum at step 0.
        momentum_end: teacher EMA momentum at the last step.
        freeze_last_layer: epochs during which the head's last layer gets no update.
    """

    default_views = "dino"  # the views of its paper

    num_views = None

    def __init__(
        self,
        backbone: nn.Module,
        output_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        num_layers: int = 3,
        batch_norm: bool = False,
        norm_last_layer: bool = True,
        teacher_temp: float = 0.07,
        warmup_teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: int = 30,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
        momentum_start: float = 0.996,
        momentum_end: float = 1.0,
        freeze_last_layer: int = 1,
    ) -> None:
        super().__init__(backbone)
        for name, value in (("momentum_start", momentum_start), ("momentum_end", momentum_end)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if freeze_last_layer < 0:
            raise ValueError(f"freeze_last_layer must be >= 0, got {freeze_last_layer}")
        self.momentum_start = float(momentum_start)
        self.momentum_end = float(momentum_end)
        self.freeze_last_layer = int(freeze_last_layer)
        self.head = DINOHead(
            self.feature_dim, output_dim, hidden_dim, bottleneck_dim, num_layers, batch_norm, norm_last_layer
        )
        self.teacher_backbone = deactivate_requires_grad(copy.deepcopy(self.backbone))
        self.teacher_head = deactivate_requires_grad(copy.deepcopy(self.head))
        self.criterion = DINOLoss(
            output_dim,
            teacher_temp=teacher_temp,
            student_temp=student_temp,
            center_momentum=center_momentum,
            warmup_teacher_temp=warmup_teacher_temp,
            warmup_epochs=warmup_teacher_temp_epochs,
        )

    def momentum(self) -> float:
        """The teacher EMA momentum for the current step (``self.progress``), used by :meth:`after_optimizer_step`."""
        step, total = self.progress.step, self.progress.total_steps
        return cosine_momentum(step, total, self.momentum_start, self.momentum_end)

    def check_views(self, views: Sequence[Tensor]) -> None:
        if not isinstance(views, Tensor) and len(views) < NUM_GLOBAL:
            raise ValueError(
                f"DINO takes {NUM_GLOBAL} global views then any number of local views, got {len(views)} view(s); "
                "build them with DINOViews"
            )
        super().check_views(views)

    def forward(self, views: Sequence[Tensor], labels: Tensor | None = None) -> MethodOutput:
        self.check_views(views)
        student = self.head(_grouped_features(self.backbone, views))  # (V * B, K)
        with torch.no_grad():
            teacher = self.teacher_head(_grouped_features(self.teacher_backbone, views[:NUM_GLOBAL]))  # (2B, K)
        epoch = self.progress.epoch
        loss = self.criterion(student.chunk(len(views)), teacher.chunk(NUM_GLOBAL), epoch=epoch)
        metrics = {
            "loss": loss.detach(),
            "teacher_temp": loss.new_tensor(self.criterion.teacher_temperature(epoch)),
            "momentum": loss.new_tensor(self.momentum()),
        }
        return MethodOutput(loss, metrics)

    def before_optimizer_step(self) -> None:
        cancel_last_layer_gradients(self.head, math.floor(self.progress.epoch), self.freeze_last_layer)

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        m = self.momentum()
        update_momentum(self.backbone, self.teacher_backbone, m)
        update_momentum(self.head, self.teacher_head, m)
