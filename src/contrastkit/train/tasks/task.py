"""``Task``: one kind of run (image self-supervised, image-text, text pairs), what ``train()`` runs the same way.

A task reads its data, builds its method (and views), refuses a mismatch between them before training, turns them
into the Lightning module, and scores the trained encoder at the end. Methods name the task they train in
(``Method.task``); tasks are registered by that name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, TypeVar

import lightning.pytorch as pl

from contrastkit.data.class_captions import ClassCaptions
from contrastkit.methods import Method
from contrastkit.registry import Registry
from contrastkit.train.config import RunConfig
from contrastkit.train.lit_method import LitMethod
from contrastkit.views import MultiViews


@dataclass(frozen=True)
class FinalEvaluation:
    """The scores of a trained encoder at the end of a run."""

    scores: dict[str, Any]  # what final_eval.json holds (and the HTML report reads)
    table: str  # the same scores as the terminal table


class Task(ABC):
    """One kind of run. ``setup`` reads the data and builds the method; ``evaluate`` scores it after training.

    Args:
        config: the validated run config.

    Attributes (after :meth:`setup`):
        data: the Lightning data module the trainer reads.
        method: the method to train.
        views: the views recipe (None: the batch itself is the only view, e.g. texts).
    """

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.data: pl.LightningDataModule | None = None
        self.method: Method | None = None
        self.views: MultiViews | None = None

    @abstractmethod
    def setup(self) -> None:
        """Read the data, build the method (and views), and refuse what cannot train, before any training."""

    @abstractmethod
    def encoder_info(self) -> dict[str, Any]:
        """The metadata saved with the exported encoder and in every checkpoint (how to rebuild and feed it)."""

    def lit_module(self, info: dict[str, Any]) -> LitMethod:
        """The method as a Lightning module (the batch's targets go to methods that use labels)."""
        return lit_method(self.config, self.method, self.views, info, use_labels=self.method.uses_labels)

    def callbacks(self) -> list[pl.Callback]:
        """The task's own Lightning callbacks (e.g. the embedding monitor)."""
        return []

    def history(self) -> list[dict[str, float]]:
        """Per-epoch monitor metrics, when the task monitors training."""
        return []

    def after_fit(self) -> None:
        """Runs on every process once training ends (e.g. the skipped-images summary); by default nothing."""
        return None

    @abstractmethod
    def evaluate(self, initial: Method) -> FinalEvaluation | None:
        """Scores of the trained method (``self.method``) next to ``initial``, a snapshot of its weights before
        training; None when the data has nothing to score against."""


def lit_method(
    config: RunConfig,
    method: Method,
    views: MultiViews | None,
    info: dict[str, Any],
    use_labels: bool,
    captions: ClassCaptions | None = None,
) -> LitMethod:
    """``method`` as a Lightning module with the trainer section's settings.

    Args:
        use_labels: pass the batch's targets (class ids, captions, paired texts) to the method.
        captions: turns class ids into captions in the training step (image-text on labelled images).
    """
    t = config.trainer
    return LitMethod(
        method,
        views,
        config.optim,
        info,
        use_labels=use_labels,
        grad_cache_chunk_size=t.grad_cache_chunk_size,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        channels_last=t.channels_last and views is not None,
        seed=config.seed,
        captions=captions,
        on_nonfinite=t.on_nonfinite,
        nonfinite_limit=t.nonfinite_limit,
        freeze_batchnorm=config.backbone.freeze_batchnorm,
        compile_backbone=t.compile,
    )


T = TypeVar("T", bound=type[Task])
_TASKS: Registry[type[Task]] = Registry("task")


def register_task(name: str):
    """Class decorator adding a task under ``name`` (the ``Method.task`` of the methods it trains)."""

    def add(cls: T) -> T:
        return _TASKS.add(name, cls)

    return add


def get_task(name: str) -> type[Task]:
    """The task registered as ``name``; an unknown name is refused with the closest one."""
    return _TASKS.get(name)


def list_tasks() -> list[str]:
    """Names of the registered tasks, sorted."""
    return _TASKS.names()
