"""Exact, memory-lean log-sum-exp of scaled similarities, computed in row blocks.

Every softmax contrastive loss (InfoNCE / NT-Xent, SupCon, CLIP, CPC) needs, for each anchor row ``a_i``, the
log-sum-exp of ``scale * a_i · b_j`` over a set of candidate rows ``b_j`` (all candidates but a few excluded ones).
Written naively this builds the whole ``M x K`` similarity matrix plus its softmax and their gradients: the memory
wall of large-batch contrastive learning (for SimCLR at N=8192 pairs, four 16384x16384 float32 matrices, 4 GiB).

``block_logsumexp`` computes the same numbers exactly while holding one ``block x K`` tile at a time. The backward
pass recomputes each tile from the saved inputs (as FlashAttention does) instead of storing it, so the memory held
between forward and backward is ``O((M + K) * D)``. Similarities and log-sum-exp are float32 even when the inputs
are bf16/fp16 or autocast is on.

The candidates excluded from row ``i`` are given as data, not as a dense mask, so no ``M x K`` boolean is built:

* ``exclude_index``: a list of ``(M,)`` long tensors; row ``i`` drops column ``idx[i]`` of each (``-1``: none).
  Used for the anchor itself and its positive.
* ``row_labels`` / ``col_labels``: row ``i`` drops every column with the same label (false negatives).
* ``mask``: an optional dense ``(M, K)`` boolean, ``True`` = drop, for arbitrary user-defined exclusions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# Above this many tile elements (rows x candidates) the computation is split into row blocks.
DEFAULT_TILE_ELEMENTS = 1 << 22  # 4M float32 = 16 MiB per tile


def auto_block_size(num_rows: int, num_cols: int, tile_elements: int = DEFAULT_TILE_ELEMENTS) -> int:
    """Rows per block so that one ``block x num_cols`` float32 tile holds about ``tile_elements`` values."""
    return max(1, min(num_rows, tile_elements // max(num_cols, 1)))


def _excluded_tile(
    r0: int,
    r1: int,
    num_cols: int,
    row_labels: Tensor | None,
    col_labels: Tensor | None,
    mask: Tensor | None,
) -> Tensor | None:
    """Dense ``(r1 - r0, K)`` boolean of dropped columns from labels and the user mask, or None."""
    out = None
    if row_labels is not None:
        out = row_labels[r0:r1, None] == col_labels[None, :]  # (R, K)
    if mask is not None:
        out = mask[r0:r1] if out is None else out | mask[r0:r1]
    return out


def _drop_indices(tile: Tensor, r0: int, r1: int, exclude_index: Sequence[Tensor], value: float) -> None:
    """Set ``tile[i, idx[r0 + i]] = value`` in place for every exclusion index vector (``-1`` entries skipped)."""
    rows = torch.arange(r1 - r0, device=tile.device)
    for idx in exclude_index:
        cols = idx[r0:r1]
        keep = cols >= 0
        if bool(keep.all()):
            tile[rows, cols] = value
        else:
            tile[rows[keep], cols[keep]] = value


class _BlockLogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, scales, exclude_index, row_labels, col_labels, mask, block_size):
        num_rows, num_cols = a.shape[0], b.shape[0]
        num_scales = scales.shape[0]
        out = a.new_empty(num_rows, num_scales)  # (M, S)
        counts = torch.empty(num_rows, dtype=torch.long, device=a.device)  # (M,)
        for r0 in range(0, num_rows, block_size):
            r1 = min(r0 + block_size, num_rows)
            sim = a[r0:r1] @ b.T  # (R, K)
            excluded = _excluded_tile(r0, r1, num_cols, row_labels, col_labels, mask)
            if excluded is not None:
                sim.masked_fill_(excluded, float("-inf"))
            _drop_indices(sim, r0, r1, exclude_index, float("-inf"))
            counts[r0:r1] = torch.isfinite(sim).sum(1) if (excluded is not None or exclude_index) else num_cols
            for s in range(num_scales):
                scaled = sim if num_scales == 1 else sim.clone()
                scaled.mul_(scales[s])  # -inf * positive scale stays -inf
                out[r0:r1, s] = torch.logsumexp(scaled, dim=1)
        ctx.save_for_backward(a, b, scales, out, row_labels, col_labels, mask, *exclude_index)
        ctx.block_size = block_size
        ctx.num_exclude = len(exclude_index)
        ctx.mark_non_differentiable(counts)
        return out, counts

    @staticmethod
    def backward(ctx, grad_out, _grad_counts):
        a, b, scales, lse, row_labels, col_labels, mask, *exclude_index = ctx.saved_tensors
        num_rows, num_cols = a.shape[0], b.shape[0]
        need_a, need_b, need_s = ctx.needs_input_grad[:3]
        grad_a = torch.zeros_like(a) if need_a else None
        grad_b = torch.zeros_like(b) if need_b else None
        grad_s = torch.zeros_like(scales) if need_s else None
        # Rows whose set is empty have lse = -inf and receive no gradient.
        lse = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
        for r0 in range(0, num_rows, ctx.block_size):
            r1 = min(r0 + ctx.block_size, num_rows)
            sim = a[r0:r1] @ b.T  # (R, K)
            excluded = _excluded_tile(r0, r1, num_cols, row_labels, col_labels, mask)
            weight = None  # (R, K): d(sum_s g_s * lse_s) / d(sim)
            in_place = scales.shape[0] == 1 and not need_s
            for s in range(scales.shape[0]):
                prob = sim.mul_(scales[s]) if in_place else sim * scales[s]
                prob.sub_(lse[r0:r1, s, None]).exp_()  # softmax over the set, (R, K)
                if excluded is not None:
                    prob.masked_fill_(excluded, 0.0)
                _drop_indices(prob, r0, r1, exclude_index, 0.0)
                g = grad_out[r0:r1, s, None]  # (R, 1)
                if need_s:
                    grad_s[s] += (g * prob * sim).sum()
                prob.mul_(g * scales[s])
                weight = prob if weight is None else weight.add_(prob)
            if need_a:
                grad_a[r0:r1] = weight @ b
            if need_b:
                grad_b.addmm_(weight.T, a[r0:r1])
        return grad_a, grad_b, grad_s, None, None, None, None, None


def block_logsumexp(
    a: Tensor,
    b: Tensor,
    scales: Tensor | float,
    exclude_index: Sequence[Tensor] = (),
    row_labels: Tensor | None = None,
    col_labels: Tensor | None = None,
    mask: Tensor | None = None,
    block_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Row-wise ``logsumexp_j(scale * a_i · b_j)`` over the candidates kept for each row, in float32 blocks.

    Args:
        a: ``(M, D)`` anchors.
        b: ``(K, D)`` candidates (may be the same tensor as ``a``).
        scales: a float, a 0-d tensor, or a list or ``(S,)`` tensor of positive scales (``1 / temperature``); a tensor
            that requires grad (a learnable logit scale) receives its gradient.
        exclude_index: ``(M,)`` long tensors, each naming one column to drop per row (``-1``: none).
        row_labels: ``(M,)`` labels of the anchors; with ``col_labels`` drops same-label columns.
        col_labels: ``(K,)`` labels of the candidates.
        mask: ``(M, K)`` boolean, ``True`` drops the column for that row.
        block_size: rows per tile; ``None`` picks one so a tile holds about 4M values (one tile for small inputs).

    Returns:
        ``(lse, counts)``: ``lse`` is ``(M, S)`` float32 (``(M,)`` when ``scales`` is a float or 0-d), ``-inf``
        for a row with nothing kept; ``counts`` is ``(M,)`` long, the number of kept candidates per row.
    """
    if isinstance(scales, Tensor):
        scalar = scales.dim() == 0
        scales_t = scales.to(device=a.device, dtype=torch.float32).reshape(-1)
    else:
        scalar = not isinstance(scales, (list, tuple))
        scales_t = torch.tensor([float(s) for s in scales] if not scalar else [float(scales)], device=a.device)
    if (row_labels is None) != (col_labels is None):
        raise ValueError("row_labels and col_labels must be given together")
    if block_size is None:
        block_size = auto_block_size(a.shape[0], b.shape[0])
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    device_type = a.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        a32, b32 = a.float(), b.float()
        idx = [i.to(device=a.device, dtype=torch.long) for i in exclude_index]
        lse, counts = _BlockLogSumExp.apply(a32, b32, scales_t, idx, row_labels, col_labels, mask, int(block_size))
    return (lse[:, 0] if scalar else lse), counts
