"""Gradient caching: the exact gradient of a large-batch contrastive loss in the memory of a small chunk.

GradCache (Gao, Zhang, Han and Callan 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
Setup", arXiv 2101.06983). A contrastive loss couples the samples of a batch only through their final embeddings, so
the backward pass splits at the embeddings:

1. embed the batch chunk by chunk without a graph (recording the RNG state before each chunk);
2. concatenate the embeddings, make them leaves that require grad, compute the loss of the *whole* batch and
   backpropagate it: this fills the gradients of parameters the loss owns (a learnable temperature) and the
   embeddings' gradients ``dL/dz``;
3. re-embed each chunk with a graph, under the RNG state recorded for it (same dropout masks, same random
   augmentations inside the model), and backpropagate ``dL/dz`` of its rows into the encoder.

Peak activation memory is that of one chunk plus the ``(B, D)`` embeddings, whatever the batch size; the cost is one
extra forward pass. Plain PyTorch, usable in any loop::

    cache = GradCache(method, chunk_size=64)
    out = cache(views, labels)        # gradients are now in the parameters' .grad
    optimizer.step(); optimizer.zero_grad()

Exactness: the gradients equal those of ``method(views, labels).loss.backward()`` (to float rounding) for models
without batch-statistics layers. With BatchNorm in train mode the statistics are those of each chunk, not of the
batch (as with gradient accumulation), and the running statistics are updated by both passes (twice per chunk).
With dropout, each chunk's masks are drawn from the RNG stream chunk by chunk, so they differ from those of one
full-batch pass; the gradient is exactly that of the loss of the embeddings the first pass computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from contrastkit.methods.method import Method, MethodOutput

EmbedFn = Callable[[Sequence[Tensor], Any], list[Tensor]]
LossFn = Callable[[list[Tensor], Any], MethodOutput]


def batch_size_of(views: Sequence[Any]) -> int:
    """The number of samples in a batch of views (rows of the first view, or its length for a list of texts)."""
    if isinstance(views, Tensor) or not len(views):
        raise TypeError("views must be a non-empty list of (B, ...) tensors (or of lists of B texts)")
    first = views[0]
    return int(first.shape[0]) if isinstance(first, Tensor) else len(first)


def slice_batch(obj: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a batch element: Tensors along dim 0; lists/tuples whose items are all Tensors (views,
    ``(token_ids, mask)``) and dicts item by item; other lists/tuples (captions) by slicing; None (and other
    non-batch values) passed through."""
    if obj is None:
        return None
    if isinstance(obj, Tensor):
        return obj[start:stop]
    if isinstance(obj, dict):
        return {k: slice_batch(v, start, stop) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if obj and all(isinstance(x, Tensor) for x in obj):
            parts = [slice_batch(x, start, stop) for x in obj]
            return type(obj)(parts) if isinstance(obj, list) else tuple(parts)
        return obj[start:stop]
    return obj


def available_methods() -> list[str]:
    """Registered method names whose class supports gradient caching."""
    from contrastkit.methods import get_method, list_methods

    return [name for name in list_methods() if getattr(get_method(name), "supports_grad_cache", False)]


def check_grad_cache_method(method: Any) -> None:
    """Refuse a method that does not implement ``embed_batch`` / ``loss_from_embeddings``, naming the ones that do."""
    if isinstance(method, Method) and not type(method).supports_grad_cache:
        raise ValueError(
            f"method {type(method).__name__} does not support gradient caching (supports_grad_cache = False): its "
            f"loss is not a function of per-sample embeddings it exposes. Methods that support it: "
            f"{', '.join(available_methods()) or 'none'}"
        )


def _devices_of(views: Sequence[Tensor]) -> list[int]:
    cuda = [v.device for v in views if isinstance(v, Tensor) and v.device.type == "cuda"]
    return sorted({d.index if d.index is not None else torch.cuda.current_device() for d in cuda})


def _get_rng(cuda_devices: list[int]) -> tuple[Tensor, list[Tensor]]:
    return torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in cuda_devices]


def _set_rng(state: tuple[Tensor, list[Tensor]], cuda_devices: list[int]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    for d, s in zip(cuda_devices, cuda, strict=True):
        torch.cuda.set_rng_state(s, d)


def grad_cache_step(
    embed: EmbedFn,
    loss_fn: LossFn,
    views: Sequence[Tensor],
    labels: Any = None,
    chunk_size: int = 64,
    backward: Callable[[Tensor], Any] | None = None,
) -> MethodOutput:
    """One GradCache forward/backward over a batch; gradients accumulate into the parameters' ``.grad``.

    Args:
        embed: ``embed(views, labels) -> list of (b, ...) tensors`` with graph (``Method.embed_batch``).
        loss_fn: ``loss_fn(embeddings, labels) -> MethodOutput`` on the whole batch (``Method.loss_from_embeddings``).
        views: the batch's views, each ``(B, ...)``; chunks are rows ``i:i + chunk_size`` of every view.
        labels: the batch's second element (Tensor split along dim 0, list of captions sliced) or None.
        chunk_size: samples per chunk (>= 1); peak activation memory is that of one chunk.
        backward: how the loss is backpropagated (default ``Tensor.backward``); Lightning passes
            ``manual_backward`` so the AMP loss scale (and accumulation scaling applied there) enters exactly once.
            The chunk passes then use plain ``torch.autograd.backward``: the cached embedding gradients already
            carry that scale.

    Several processes: the chunk passes backpropagate once per chunk, so under DistributedDataParallel run them
    without its synchronisation (``no_sync()``, or ``require_backward_grad_sync = False``) and call
    :func:`average_gradients` once before the optimiser step, as the contrastkit trainer does.

    Returns:
        The :class:`MethodOutput` of the whole batch, loss detached.
    """
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    n = batch_size_of(views)
    bounds = [(i, min(i + chunk_size, n)) for i in range(0, n, chunk_size)]
    cuda_devices = _devices_of(views)

    # 1. embed each chunk without a graph, recording the RNG state it started from
    states, chunks = [], []
    with torch.no_grad():
        for start, stop in bounds:
            states.append(_get_rng(cuda_devices))
            out = embed([v[start:stop] for v in views], slice_batch(labels, start, stop))
            chunks.append([e.detach() for e in out])
    after = _get_rng(cuda_devices)
    if len({len(c) for c in chunks}) != 1:
        raise ValueError("embed returned a different number of outputs for different chunks")
    for k in range(len(chunks[0])):
        rows = [c[k].shape[0] if c[k].dim() else -1 for c in chunks]
        if rows != [stop - start for start, stop in bounds]:
            raise ValueError(
                f"output {k} of embed has {rows} rows for chunks of {[b - a for a, b in bounds]} samples: "
                "embed_batch must return per-sample outputs whose rows align with the batch"
            )

    # 2. the loss of the whole batch on leaf embeddings: parameter gradients of the loss, and dL/dz
    embeddings = [torch.cat([c[k] for c in chunks]).requires_grad_(True) for k in range(len(chunks[0]))]
    with torch.enable_grad():
        result = loss_fn(embeddings, labels)
        (backward or Tensor.backward)(result.loss)
    grads = [e.grad for e in embeddings]
    del chunks

    # 3. re-embed each chunk with graph under its recorded RNG state; push its rows of dL/dz into the encoder
    try:
        with torch.enable_grad():
            for (start, stop), state in zip(bounds, states, strict=True):
                _set_rng(state, cuda_devices)
                out = embed([v[start:stop] for v in views], slice_batch(labels, start, stop))
                pairs = [
                    (e, g[start:stop]) for e, g in zip(out, grads, strict=True) if g is not None and e.requires_grad
                ]
                if pairs:
                    torch.autograd.backward([e for e, _ in pairs], [g.to(e.dtype) for e, g in pairs])
    finally:
        _set_rng(after, cuda_devices)  # the RNG stream continues as after one pass
    return MethodOutput(result.loss.detach(), {k: v.detach() for k, v in result.metrics.items()})


def average_gradients(parameters: Any) -> None:
    """Average the ``.grad`` of ``parameters`` over the ``torch.distributed`` processes (one all-reduce per dtype and
    device, on flattened buffers): what DistributedDataParallel does during backward, done once per optimiser step
    when the backward passes ran without its synchronisation (several GradCache passes per step)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    world = dist.get_world_size()
    groups: dict[tuple[torch.dtype, torch.device], list[Tensor]] = {}
    for p in parameters:
        if p.requires_grad:
            if p.grad is None:  # unused this step on this process; others may have a gradient
                p.grad = torch.zeros_like(p)
            groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
    for grads in groups.values():
        flat = torch.cat([g.reshape(-1) for g in grads])  # (sum of numels,)
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


class GradCache:
    """Gradient caching for a method (or a pair of callables): ``GradCache(method, chunk_size)(views, labels)``.

    See :func:`grad_cache_step` and the module docstring. Exact (to float rounding) for models without
    batch-statistics layers; with BatchNorm in train mode statistics are per chunk and running statistics are
    updated by both passes.

    Args:
        method: a :class:`~contrastkit.methods.Method` with ``supports_grad_cache = True``, or a pair
            ``(embed, loss_fn)`` of callables with the signatures of ``embed_batch`` and ``loss_from_embeddings``.
        chunk_size: samples embedded at once (>= 1).
    """

    def __init__(self, method: Method | tuple[EmbedFn, LossFn], chunk_size: int) -> None:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        if isinstance(method, (tuple, list)):
            if len(method) != 2 or not all(callable(f) for f in method):
                raise TypeError("GradCache takes a Method or a pair (embed, loss_fn) of callables")
            self.embed, self.loss_fn = method
        else:
            check_grad_cache_method(method)
            if not hasattr(method, "embed_batch") or not hasattr(method, "loss_from_embeddings"):
                raise TypeError(f"{type(method).__name__} has no embed_batch / loss_from_embeddings")
            self.embed, self.loss_fn = method.embed_batch, method.loss_from_embeddings
        self.chunk_size = chunk_size

    def __call__(
        self,
        views: Sequence[Tensor],
        labels: Any = None,
        backward: Callable[[Tensor], Any] | None = None,
    ) -> MethodOutput:
        """Forward and backward of one batch (``backward`` as in :func:`grad_cache_step`); returns the detached
        loss and metrics."""
        return grad_cache_step(self.embed, self.loss_fn, views, labels, self.chunk_size, backward)


__all__ = [
    "GradCache",
    "available_methods",
    "average_gradients",
    "check_grad_cache_method",
    "grad_cache_step",
    "slice_batch",
]
