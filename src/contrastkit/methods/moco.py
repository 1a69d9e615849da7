"""MoCo v2 (momentum key encoder and a queue of negatives) and MoCo v3 (in-batch keys, a predictor, no queue)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from contrastkit.heads import PredictionHead, ProjectionHead, cosine_momentum, deactivate_requires_grad, update_momentum
from contrastkit.losses import InfoNCELoss
from contrastkit.losses.distributed import gather_no_grad, row_offset
from contrastkit.losses.similarity import normalize
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method

# version -> (projection_dim, hidden_dim, momentum, cosine momentum, symmetric, batch_norm, queue_size)
_DEFAULTS = {2: (128, 2048, 0.999, False, False, False, 65536), 3: (256, 4096, 0.99, True, True, True, 0)}


@register_method
class MoCo(Method):
    """Momentum Contrast, v2 or v3, chosen by ``version``; every ``None`` argument takes that version's default.

    **v2** (He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020, arXiv
    1911.05722; Chen, Fan, Girshick and He, "Improved Baselines with Momentum Contrastive Learning", arXiv
    2003.04297): the query encoder is the backbone and a projection MLP (Linear-ReLU-Linear, 2048 -> 128, no BN);
    the key encoder is a copy of it, never trained by gradient but moved after every optimiser step as
    ``key <- m * key + (1 - m) * query`` with ``m = 0.999``. The InfoNCE loss (temperature 0.2) contrasts each query
    with its key (the other view, through the key encoder) against a queue of ``queue_size`` past keys (65536).
    The keys of each training forward (gathered over all processes) are then enqueued, overwriting the oldest.
    ``symmetric=True`` adds the loss with the views swapped, averages the two and enqueues both views' keys.
    Shuffling BN (the paper's batch shuffle across GPUs) is not done: with several processes, use SyncBatchNorm.

    **v3** (Chen, Xie and He, "An Empirical Study of Training Self-Supervised Vision Transformers", ICCV 2021,
    arXiv 2104.02057): no queue. A prediction MLP (256 -> 4096 -> 256) follows the query projection; the
    projection MLP (4096 -> 256) has BN on every layer, the output BN without affine parameters; the keys are the
    other view's key projections over the global batch. The loss is the paper's Algorithm 1,
    ``2 * tau * (ctr(q1, k2) + ctr(q2, k1))``. The momentum rises from 0.99 to 1 on a cosine over the run. That
    is the ResNet setting of the official code (facebookresearch/moco-v3); for a ViT it uses a 3-layer projector
    (``num_layers=3``) and an output BN in the predictor (not offered here). The temperature 0.2 is the paper's
    ViT setting; the official ResNet-50 recipe uses 1.0.

    The EMA update runs in :meth:`after_optimizer_step` (the official code runs it at the start of the next
    forward: the same sequence of key encoders, the cosine schedule read one step earlier).

    Queue and pointer are buffers (``queue``, ``queue_ptr``): they are saved in ``state_dict`` and resume.

    Args:
        backbone: the encoder, with ``feature_dim``; ``embed`` returns the query backbone's features.
        version: 2 (queue of negatives) or 3 (in-batch keys, predictor).
        projection_dim: output size of the projection (and prediction) head: 128 (v2), 256 (v3).
        hidden_dim: hidden width of the projection and prediction heads: 2048 (v2), 4096 (v3).
        num_layers: Linear layers in the projection head (2; MoCo v3 uses 3 for ViTs).
        queue_size: negatives kept in the queue: 65536 (v2); v3 has no queue (None or 0).
        temperature: InfoNCE temperature (0.2: MoCo v2, and MoCo v3 for ViTs; 1.0 in v3's ResNet-50 recipe).
        momentum: key-encoder EMA momentum: 0.999 (v2), 0.99 (v3, the start of its cosine schedule).
        momentum_cosine: raise the momentum from ``momentum`` to 1 on a cosine over the run: False (v2), True (v3).
        symmetric: also contrast the second view's query with the first view's key: False (v2), True (v3).
        batch_norm: BatchNorm in the projection head: False (v2), True (v3; its predictor always has BN).
        gather_distributed: gather keys over all processes (the global batch's keys are enqueued, or in v3
            contrasted against).
    """

    default_views = "mocov2"  # the views of its paper

    def __init__(
        self,
        backbone: nn.Module,
        version: int = 2,
        projection_dim: int | None = None,
        hidden_dim: int | None = None,
        num_layers: int = 2,
        queue_size: int | None = None,
        temperature: float = 0.2,
        momentum: float | None = None,
        momentum_cosine: bool | None = None,
        symmetric: bool | None = None,
        batch_norm: bool | None = None,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone)
        if version not in _DEFAULTS:
            raise ValueError(f"MoCo version must be 2 or 3, got {version}")
        given = (projection_dim, hidden_dim, momentum, momentum_cosine, symmetric, batch_norm, queue_size)
        values = [d if v is None else v for v, d in zip(given, _DEFAULTS[version], strict=True)]
        projection_dim, hidden_dim, momentum, momentum_cosine, symmetric, batch_norm, queue_size = values
        if version == 3 and queue_size != 0:
            raise ValueError(
                f"MoCo v3 has no queue (its keys come from the batch): leave queue_size unset, got {queue_size}"
            )
        if version == 2 and queue_size < 1:
            raise ValueError(f"MoCo v2 needs queue_size >= 1, got {queue_size}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.version = version
        self.base_momentum = float(momentum)
        self.momentum_cosine = bool(momentum_cosine)
        self.symmetric = bool(symmetric)
        self.gather_distributed = gather_distributed
        self.projection_head = ProjectionHead(
            self.feature_dim,
            hidden_dim,
            projection_dim,
            num_layers=num_layers,
            batch_norm=batch_norm,
            last_batch_norm=version == 3 and batch_norm,  # v3: output BN without scale and shift
            last_affine=False,
        )
        self.prediction_head = PredictionHead(projection_dim, hidden_dim, projection_dim) if version == 3 else None
        self.key_backbone = deactivate_requires_grad(copy.deepcopy(self.backbone))
        self.key_projection_head = deactivate_requires_grad(copy.deepcopy(self.projection_head))
        self.criterion = InfoNCELoss(temperature=temperature)
        if version == 2:
            self.register_buffer("queue", normalize(torch.randn(queue_size, projection_dim)))  # (K, D) unit rows
            self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))  # next row to overwrite

    def momentum(self) -> float:
        """The EMA momentum for the current step (``self.progress``), used by :meth:`after_optimizer_step`."""
        if not self.momentum_cosine:
            return self.base_momentum
        return cosine_momentum(self.progress.step, self.progress.total_steps, self.base_momentum, 1.0)

    def query(self, x: Tensor) -> Tensor:
        """Query embeddings ``(B, projection_dim)``: backbone, projection head and (v3) predictor."""
        q = self.projection_head(self.backbone(x))  # (B, D)
        return q if self.prediction_head is None else self.prediction_head(q)  # (B, D)

    @torch.no_grad()
    def key(self, x: Tensor) -> Tensor:
        """Unit-norm key embeddings ``(B, projection_dim)`` of the momentum encoder, without gradient."""
        return normalize(self.key_projection_head(self.key_backbone(x)))  # (B, D) float32

    def forward(self, views: Sequence[Tensor], labels: Tensor | None = None) -> MethodOutput:
        self.check_views(views)
        x1, x2 = views
        # (query, key of the other view), (B, D) float32 each: the loss computes in float32 under autocast anyway
        pairs = [(self.query(x1).float(), self.key(x2))]
        if self.symmetric:
            pairs.append((self.query(x2).float(), self.key(x1)))
        if self.version == 2:
            bank = self.queue.clone()  # (K, D), a snapshot: the queue is updated below
            loss = sum(self.criterion(q, k, negatives=bank) for q, k in pairs) / len(pairs)
            if self.training:
                self._enqueue(torch.cat([k for _, k in pairs]))  # (B or 2B, D)
        else:
            loss = 2 * self.criterion.temperature * sum(self._in_batch(q, k) for q, k in pairs)
        return MethodOutput(loss, {"loss": loss.detach(), "momentum": loss.new_tensor(self.momentum())})

    def _in_batch(self, q: Tensor, k: Tensor) -> Tensor:
        """v3's ``ctr(q, k)``: cross-entropy of each query over all keys of the global batch, its own the target."""
        n = q.shape[0]
        keys, offset = k, 0  # (N, D)
        if self.gather_distributed:
            keys, offset = gather_no_grad(k), row_offset(n, k.device)  # (N_total, D)
        rows = torch.arange(n, device=k.device)  # (N,)
        own = torch.zeros(n, keys.shape[0], dtype=torch.bool, device=k.device)  # (N, N_total)
        own[rows, rows + offset] = True  # the positive is not also a negative
        return self.criterion(q, k, negatives=keys, mask=own)

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` (gathered over processes) into the queue at the pointer, wrapping around."""
        if self.gather_distributed:
            keys = gather_no_grad(keys)  # (N_total, D)
        size = self.queue.shape[0]
        keys = keys[-size:]  # a batch larger than the queue keeps its newest keys
        rows = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % size  # (n,)
        self.queue.index_copy_(0, rows, keys.to(self.queue.dtype))
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % size)

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        m = self.momentum()
        update_momentum(self.backbone, self.key_backbone, m)
        update_momentum(self.projection_head, self.key_projection_head, m)
