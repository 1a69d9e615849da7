"""Gathering embeddings across ``torch.distributed`` processes with gradients flowing back.

A contrastive loss wants every process's embeddings as negatives. ``all_gather`` alone has no backward, so the
classic bug (lightning-bolts, SLIP, Chinese-CLIP, PML's wrapper) is that remote negatives receive no gradient.
``gather_with_grad`` returns the concatenation of all processes' tensors; in backward it sums the incoming
gradient across processes and hands each process the slice of its own rows.

Convention: each process computes the loss of its *local* anchors against the *gathered* candidates and takes the
mean over its local anchors. DDP averages parameter gradients over the W processes, so the parameter gradients are
exactly those of one process running the mean loss over the concatenated batch. (The gradient w.r.t. a process's
own embeddings is W times the single-process one, before DDP's division by W.)

Processes may hold different numbers of rows; sizes are exchanged first.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialised ``torch.distributed`` process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` outside a process group."""
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather_sizes(n: int, device: torch.device) -> list[int]:
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([n], dtype=torch.long, device=device))
    return [int(s.item()) for s in sizes]


def _all_gather_padded(x: Tensor, sizes: list[int]) -> Tensor:
    """all_gather of tensors whose first dimension differs between processes."""
    longest = max(sizes)
    padded = x.new_zeros((longest, *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sizes: list[int], start: int) -> Tensor:
        ctx.start, ctx.stop = start, start + x.shape[0]
        return _all_gather_padded(x, sizes)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop], None, None


def gather_with_grad(x: Tensor) -> tuple[Tensor, int]:
    """Concatenate ``x`` from all processes along dim 0, differentiably.

    Args:
        x: ``(n, ...)`` this process's rows.

    Returns:
        ``(gathered, offset)``: ``gathered`` is ``(sum of n over processes, ...)`` and this process's rows are
        ``gathered[offset : offset + n]``. Outside a process group, ``(x, 0)``.
    """
    if not is_distributed():
        return x, 0
    sizes = _gather_sizes(x.shape[0], x.device)
    offset = sum(sizes[: dist.get_rank()])
    return _GatherWithGrad.apply(x, sizes, offset), offset


def row_offset(n: int, device: torch.device) -> int:
    """Number of rows held by the processes of lower rank when each holds ``n`` (0 outside a process group)."""
    if not is_distributed():
        return 0
    return sum(_gather_sizes(n, device)[: dist.get_rank()])


def gather_no_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (labels, masks, keys) from all processes along dim 0, without gradient."""
    if not is_distributed():
        return x
    return _all_gather_padded(x.detach(), _gather_sizes(x.shape[0], x.device))
