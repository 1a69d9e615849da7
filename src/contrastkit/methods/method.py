"""The interface every method shares: views in, loss and metrics out, ``embed`` for the backbone features.

Methods whose loss only couples samples through their final outputs (SimCLR, SupCon, CLIP) also split ``forward``
into ``embed_batch`` (per-sample outputs) and ``loss_from_embeddings`` (the batch loss), which is what gradient
caching (:class:`contrastkit.optim.grad_cache.GradCache`) needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Progress:
    """Where training stands, set by the trainer before each step (schedules such as EMA momentum read it)."""

    step: int = 0  # optimiser steps taken so far
    total_steps: int = 1  # optimiser steps in the whole run
    epoch: float = 0.0  # fractional epoch: 1.5 is half-way through the second epoch


@dataclass
class MethodOutput:
    """What a method's forward returns: the loss to minimise and detached scalars to log."""

    loss: Tensor  # 0-d, with graph
    metrics: dict[str, Tensor] = field(default_factory=dict)  # name -> detached 0-d tensor


class Method(nn.Module):
    """A self-supervised method: a backbone, heads and a loss from :mod:`contrastkit.losses`, composed.

    Subclasses implement ``forward(views, labels=None) -> MethodOutput``, or ``embed_batch`` and
    ``loss_from_embeddings`` (then the default ``forward`` composes them and GradCache can chunk the batch), and may
    override
    ``after_optimizer_step`` (momentum teachers) and ``before_optimizer_step`` (gradient surgery such as DINO's
    frozen last layer). Usable in any training loop::

        out = method(views)            # views: list of (B, C, H, W) float tensors
        out.loss.backward()
        method.before_optimizer_step()
        optimizer.step()
        method.after_optimizer_step()  # EMA teachers follow the student

    Args:
        backbone: the encoder; must expose ``feature_dim`` (the size of its output features).

    Attributes:
        num_views: how many views the method expects per image (``None``: any number >= its minimum).
        task: the kind of run the method trains in (the trainer's task of that name): ``"images"`` (views of
            images), ``"image-text"`` (images and their captions, passed as the second argument) or ``"text-pairs"``
            (texts and their paired texts; no views, the backbone is a text encoder).
        takes_views: whether the method trains on views of images (a config then has a ``views`` section); False
            for texts and sequences, where the batch itself is the input.
        uses_labels: whether ``forward`` needs the batch's class labels (SupCon); the trainer passes them.
        supports_grad_cache: whether the method implements :meth:`embed_batch` and :meth:`loss_from_embeddings`
            (its ``forward`` is then ``loss_from_embeddings(embed_batch(views, labels), labels)``), so that
            :class:`~contrastkit.optim.grad_cache.GradCache` can embed a large batch in chunks.
        progress: the trainer's :class:`Progress`; set it with :meth:`set_progress` in your own loop.
    """

    num_views: int | None = 2
    default_views: str | None = "simclr"  # the views recipe a config without a views section gets (None: none)
    task: str = "images"
    takes_views: bool = True
    uses_labels: bool = False
    supports_grad_cache: bool = False

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        feature_dim = getattr(backbone, "feature_dim", None)
        if not isinstance(feature_dim, int) or feature_dim < 1:
            raise TypeError(
                f"backbone {type(backbone).__name__} has no integer 'feature_dim'; backbones from "
                "contrastkit.backbones.create_backbone have one, set it on your own module"
            )
        self.backbone = backbone
        self.progress = Progress()

    @property
    def feature_dim(self) -> int:
        """Size of the features ``embed`` returns."""
        return int(self.backbone.feature_dim)

    def embed(self, x: Tensor) -> Tensor:
        """Backbone features ``(B, feature_dim)`` of ``x``: the representation used downstream."""
        return self.backbone(x)

    def forward(self, views: Sequence[Tensor], labels: Any = None) -> MethodOutput:
        """The loss of a batch: ``loss_from_embeddings(embed_batch(views, labels), labels)`` for methods with that
        split (the same code path GradCache runs chunk by chunk); other methods override ``forward``."""
        return self.loss_from_embeddings(self.embed_batch(views, labels), labels)

    def export_module(self) -> tuple[nn.Module, dict[str, Any]]:
        """What an encoder file holds: the module and the metadata needed, beyond the run's, to rebuild it.

        Default: the backbone (``kind: image``). Image-text methods export both towers (``kind: dual``).
        """
        return self.backbone, {"kind": "image"}

    def embed_batch(self, views: Sequence[Tensor], labels: Any = None) -> list[Tensor]:
        """The per-sample outputs the loss is computed from, with graph: tensors whose row ``i`` depends only on
        sample ``i`` of the batch (e.g. one ``(B, D)`` projection per view), so the batch can be embedded in chunks.

        ``labels`` is the batch's second element (class ids, captions, ...) or None. Methods with
        ``supports_grad_cache = True`` implement it; the default refuses.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement embed_batch: it does not support gradient caching "
            "(supports_grad_cache = False)"
        )

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Any = None) -> MethodOutput:
        """The loss and metrics of the whole batch from the outputs of :meth:`embed_batch` (rows concatenated
        over chunks). Methods with ``supports_grad_cache = True`` implement it; the default refuses."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement loss_from_embeddings: it does not support gradient caching "
            "(supports_grad_cache = False)"
        )

    def set_progress(self, progress: Progress) -> None:
        """Tell the method where training stands (the trainer calls it before every step)."""
        self.progress = progress

    def before_optimizer_step(self) -> None:
        """Called after backward, before the optimiser step (gradients exist). Default: nothing."""

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Called after each optimiser step (EMA updates of momentum encoders). Default: nothing."""

    def check_views(self, views: Sequence[Tensor]) -> None:
        """Refuse a wrong number of views with a message that says how many this method takes."""
        if isinstance(views, Tensor):
            raise TypeError(f"{type(self).__name__} takes a list of view tensors, got one tensor {tuple(views.shape)}")
        expected = self.num_views
        if expected is not None and len(views) != expected:
            raise ValueError(
                f"{type(self).__name__} takes {expected} views per image, got {len(views)}; "
                f"build them with the method's views recipe (e.g. SimCLRViews(num_views={expected}))"
            )
        sizes = {v.shape[0] for v in views}
        if len(sizes) != 1:
            raise ValueError(f"all views must have the same batch size, got {sorted(sizes)}")
