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


# exp(x) for |x| <= this stays a normal float32 and a sum of up to 2^60 such terms cannot overflow, so when
# scale * |a_i| * |b_j| is bounded by it the per-row max shift (one extra pass per tile) is unnecessary.
_NO_SHIFT_BOUND = 40.0


def _drop_tile(r0: int, r1: int, row_labels: Tensor | None, col_labels: Tensor | None, mask: Tensor | None):
    """Dense ``(r1 - r0, K)`` boolean of dropped columns from labels and the user mask, or None."""
    out = None
    if row_labels is not None:
        out = row_labels[r0:r1, None] == col_labels[None, :]  # (R, K)
    if mask is not None:
        out = mask[r0:r1].clone() if out is None else out.logical_or_(mask[r0:r1])
    return out


def _set_indices(tile: Tensor, r0: int, r1: int, exclude_index: Sequence[Tensor], value) -> None:
    """Set ``tile[i, idx[r0 + i]] = value`` in place for every exclusion index vector (``-1`` entries skipped)."""
    rows = torch.arange(r1 - r0, device=tile.device)
    for idx in exclude_index:
        cols = idx[r0:r1]
        keep = cols >= 0
        if bool(keep.all()):
            tile[rows, cols] = value
        else:
            tile[rows[keep], cols[keep]] = value


def _index_drop_counts(exclude_index: Sequence[Tensor], num_rows: int, device: torch.device) -> Tensor:
    """Number of distinct valid columns the index vectors drop in each row, ``(M,)``."""
    if not exclude_index:
        return torch.zeros(num_rows, dtype=torch.long, device=device)
    idx = torch.stack(list(exclude_index), 1).sort(1).values  # (M, E)
    distinct = idx >= 0
    distinct[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    return distinct.sum(1)


def _tile_exp(a_blk: Tensor, b: Tensor, scale: Tensor, shift: Tensor | None) -> Tensor:
    """``exp(scale * a_blk @ b.T - shift)`` as a fresh ``(R, K)`` tile, the shift folded into the GEMM."""
    if shift is None:
        tile = (a_blk * scale) @ b.T  # (R, K)
    else:
        tile = torch.addmm(-shift[:, None], a_blk * scale, b.T)  # (R, K)
    return tile.exp_()


class _BlockLogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, scales, exclude_index, row_labels, col_labels, mask, block_size):
        num_rows, num_cols = a.shape[0], b.shape[0]
        out = a.new_empty(num_rows, scales.shape[0])  # (M, S)
        counts = num_cols - _index_drop_counts(exclude_index, num_rows, a.device)  # (M,)
        bound = a.norm(dim=1).max() * b.norm(dim=1).max() if num_rows and num_cols else a.new_zeros(())
        for s, scale in enumerate(scales):
            no_shift = bool(scale * bound <= _NO_SHIFT_BOUND)
            for r0 in range(0, num_rows, block_size):
                r1 = min(r0 + block_size, num_rows)
                drop = _drop_tile(r0, r1, row_labels, col_labels, mask)
                if drop is not None and s == 0:
                    _set_indices(drop, r0, r1, exclude_index, True)
                    counts[r0:r1] = num_cols - drop.sum(1)
                if no_shift:
                    tile = _tile_exp(a[r0:r1], b, scale, None)  # (R, K)
                    shift = None
                else:  # low temperature or unnormalised inputs: subtract each row's max first
                    tile = (a[r0:r1] * scale) @ b.T  # (R, K)
                    if drop is not None:
                        tile.masked_fill_(drop, float("-inf"))
                    _set_indices(tile, r0, r1, exclude_index, float("-inf"))
                    shift = tile.amax(1)  # (R,)
                    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
                    tile.sub_(shift[:, None]).exp_()
                if drop is not None:
                    tile.masked_fill_(drop, 0.0)
                _set_indices(tile, r0, r1, exclude_index, 0.0)
                lse = tile.sum(1).log_()  # (R,), -inf for a row with nothing kept
                out[r0:r1, s] = lse if shift is None else lse + shift
        ctx.save_for_backward(a, b, scales, out, row_labels, col_labels, mask, *exclude_index)
        ctx.block_size = block_size
        ctx.mark_non_differentiable(counts)
        return out, counts

    @staticmethod
    def backward(ctx, grad_out, _grad_counts):
        a, b, scales, lse, row_labels, col_labels, mask, *exclude_index = ctx.saved_tensors
        num_rows = a.shape[0]
        need_a, need_b, need_s = ctx.needs_input_grad[:3]
        grad_a = torch.zeros_like(a) if need_a or need_s else None
        grad_b = torch.zeros_like(b) if need_b else None
        grad_s = torch.zeros_like(scales) if need_s else None
        # A row with nothing kept has lse = -inf; shifting it by +inf makes its softmax (and gradient) zero.
        lse = torch.where(torch.isneginf(lse), torch.full_like(lse, float("inf")), lse)
        for r0 in range(0, num_rows, ctx.block_size):
            r1 = min(r0 + ctx.block_size, num_rows)
            drop = _drop_tile(r0, r1, row_labels, col_labels, mask)
            for s, scale in enumerate(scales):
                prob = _tile_exp(a[r0:r1], b, scale, lse[r0:r1, s])  # (R, K) softmax over the kept set
                if drop is not None:
                    prob.masked_fill_(drop, 0.0)
                _set_indices(prob, r0, r1, exclude_index, 0.0)
                g = grad_out[r0:r1, s, None] * scale  # (R, 1): d loss / d (a_i . b_j) = g_i * scale * p_ij
                pb = prob @ b  # (R, D)
                if need_a or need_s:
                    grad_a[r0:r1] += pb * g
                if need_b:
                    grad_b.addmm_(prob.T, a[r0:r1] * g)
                if need_s:  # d lse_i / d scale = sum_j p_ij (a_i . b_j) = a_i . (P b)_i
                    grad_s[s] += (grad_out[r0:r1, s] * (a[r0:r1] * pb).sum(1)).sum()
        return (grad_a if need_a else None), grad_b, grad_s, None, None, None, None, None


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
