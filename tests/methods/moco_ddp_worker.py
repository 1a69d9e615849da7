"""The two-process (gloo) MoCo worker, in a module of its own so the spawned processes import little."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from contrastkit.methods.moco import MoCo


class _FlatLinear(nn.Module):
    """A backbone without BatchNorm, so per-process and whole-batch forwards agree sample by sample."""

    feature_dim = 12

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16 * 16, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))  # (B, 12)


def ddp_methods() -> tuple[MoCo, MoCo]:
    torch.manual_seed(0)
    v2 = MoCo(_FlatLinear(), projection_dim=8, hidden_dim=16, queue_size=20)
    v3 = MoCo(_FlatLinear(), version=3, projection_dim=8, hidden_dim=16).eval()  # eval: predictor BN per sample
    return v2, v3


def ddp_views() -> torch.Tensor:
    return torch.randn(2, 8, 1, 16, 16, generator=torch.Generator().manual_seed(0))  # (views, 2 x 4 samples, ...)


def ddp_worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    x = ddp_views()[:, rank * 4 : rank * 4 + 4]  # this process's half of the batch
    v2, v3 = ddp_methods()
    result = {"loss2": v2(list(x)).loss.detach(), "loss3": v3(list(x)).loss.detach()}
    result |= {"queue": v2.queue.clone(), "ptr": v2.queue_ptr.clone()}
    torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()
