"""The learning-rate schedule of the field: linear warm-up, then cosine decay (Goyal et al. 2017; Loshchilov and
Hutter 2017), in optimiser steps planned from the steps a run will actually take."""

from __future__ import annotations

import math
from dataclasses import dataclass


class WarmupCosine:
    """Learning-rate multiplier: linear from ``1 / warmup_steps`` to 1 over the warm-up, then cosine to ``min_ratio``.

    A class (not a lambda) so ``LambdaLR.state_dict`` saves its fields and a resumed run continues the schedule.

    Args:
        warmup_steps: optimiser steps of linear warm-up (0: none).
        total_steps: optimiser steps of the whole run.
        min_ratio: the multiplier at the end.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> None:
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), 1)
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


MAX_WARMUP_FRACTION = 0.1  # a warm-up longer than this fraction of the run's optimiser steps is shortened to it


@dataclass(frozen=True)
class SchedulePlan:
    """The learning-rate schedule of a run in optimiser steps, from the steps the run will actually take."""

    total_steps: int  # optimiser steps of the whole run (whichever of max_epochs / max_steps ends it first)
    steps_per_epoch: int  # optimiser steps per epoch (batches per process per epoch / accumulation, rounded up)
    warmup_steps: int  # linear warm-up steps, after the MAX_WARMUP_FRACTION cap
    requested_warmup_steps: int  # optim.warmup_epochs x steps_per_epoch, before the cap

    @property
    def note(self) -> str | None:
        """One line saying the warm-up was shortened (None when it was not)."""
        if self.warmup_steps == self.requested_warmup_steps:
            return None
        return (
            f"contrastkit: optim.warmup_epochs asks for {self.requested_warmup_steps} warm-up steps, more than "
            f"{MAX_WARMUP_FRACTION:.0%} of the run's {self.total_steps} optimiser steps: warming up for "
            f"{self.warmup_steps} steps instead"
        )


def plan_schedule(
    warmup_epochs: float, batches_per_epoch: int, accumulate: int, max_epochs: int, max_steps: int = -1
) -> SchedulePlan:
    """Warm-up and total steps of a run that ends at ``max_epochs`` or ``max_steps`` (-1: none), whichever first.

    Args:
        warmup_epochs: ``optim.warmup_epochs`` (fractions allowed).
        batches_per_epoch: batches one process takes per epoch (the per-process shard, after
            ``limit_train_batches``): the same count for any number of processes sharing one global batch.
        accumulate: batches per optimiser step; the last, shorter group of an epoch also steps (as Lightning does).
        max_epochs: epochs of the run.
        max_steps: optimiser steps of the run (-1: no limit).
    """
    if batches_per_epoch < 1 or accumulate < 1 or max_epochs < 1:
        raise ValueError(
            f"batches_per_epoch, accumulate and max_epochs must be >= 1, got {batches_per_epoch}, {accumulate} "
            f"and {max_epochs}"
        )
    per_epoch = math.ceil(batches_per_epoch / accumulate)
    total = per_epoch * max_epochs if max_steps < 0 else min(per_epoch * max_epochs, max_steps)
    total = max(total, 1)
    requested = round(warmup_epochs * per_epoch)
    return SchedulePlan(total, per_epoch, min(requested, math.floor(MAX_WARMUP_FRACTION * total)), requested)
