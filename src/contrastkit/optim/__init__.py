"""Optimisation pieces for any training loop, below the trainer: LARS, parameter groups without weight decay on
biases and norms, the warm-up + cosine schedule, and GradCache (exact large-batch contrastive steps in chunks).
Pure torch: importing this package imports neither Lightning nor the trainer."""

from contrastkit.optim.grad_cache import GradCache, average_gradients, grad_cache_step
from contrastkit.optim.lars import LARS
from contrastkit.optim.parameter_groups import parameter_groups
from contrastkit.optim.warmup_cosine import SchedulePlan, WarmupCosine, plan_schedule

__all__ = [
    "LARS",
    "GradCache",
    "SchedulePlan",
    "WarmupCosine",
    "average_gradients",
    "grad_cache_step",
    "parameter_groups",
    "plan_schedule",
]
