"""Per-epoch monitors: online kNN accuracy on held-out labelled images, and collapse signals with a warning that
says what collapsed and what usually fixes it."""

from __future__ import annotations

import warnings
from typing import Any

import lightning.pytorch as pl
from torch import Tensor

from contrastkit.data.labelled import Labelled
from contrastkit.eval.embed_images import embed_images
from contrastkit.train.config import MonitorConfig


class CollapseWarning(UserWarning):
    """The embeddings of a run have (nearly) collapsed."""


class EmbeddingMonitor(pl.Callback):
    """Every ``config.every_n_epochs`` epochs: online kNN top-1/top-5 and embedding health, logged and checked.

    Logged keys: ``knn/top1``, ``knn/top5`` (when labelled images exist), ``health/std_ratio`` (mean per-dimension
    std of the normalised features over the ``1/sqrt(d)`` of uniformly spread ones: 1 healthy, 0 collapsed) and
    ``health/rankme`` (effective rank, Garrido et al. 2023). The backbone runs in eval mode (BatchNorm running
    statistics), like any downstream use. Each process computes the same numbers (same images, same weights).

    Args:
        config: the monitor section.
        bank: labelled training images (kNN bank); None when the data has no labels.
        queries: labelled held-out images; their features also give the health metrics.
        health_images: images for the health metrics when there are no labels (a training subset).
        mean, std, size: the views' normalisation and size.
    """

    def __init__(
        self,
        config: MonitorConfig,
        bank: Labelled | None,
        queries: Labelled | None,
        health_images: Tensor | None,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        size: int,
    ) -> None:
        self.config = config
        self.bank, self.queries, self.health_images = bank, queries, health_images
        self.mean, self.std, self.size = mean, std, size
        self.history: list[dict[str, float]] = []
        self.warnings: list[str] = []

    def compute(self, pl_module: pl.LightningModule) -> dict[str, float]:
        """The monitors' numbers for the current weights."""
        from contrastkit.eval import collapse_warnings, embedding_std, knn_accuracy, rankme

        method = pl_module.method
        was_training = method.training
        method.eval()
        try:

            def features(images: Tensor) -> Tensor:
                return embed_images(method.embed, images, self.mean, self.std, self.size, pl_module.device)

            metrics: dict[str, float] = {}
            if self.bank is not None and self.queries is not None:
                bank, queries = features(self.bank.images), features(self.queries.images)  # (Nb, D), (Nq, D)
                knn = knn_accuracy(
                    bank,
                    self.bank.labels,
                    queries,
                    self.queries.labels,
                    k=self.config.knn_k,
                    temperature=self.config.knn_temperature,
                )
                metrics["knn/top1"], metrics["knn/top5"] = float(knn.top1), float(knn.top5)
                health = queries
            elif self.health_images is not None:
                health = features(self.health_images)
            else:
                return metrics
        finally:
            method.train(was_training)
        std = embedding_std(health)
        metrics["health/std_ratio"] = float(std.ratio)
        metrics["health/rankme"] = float(rankme(health))
        if self.config.collapse_warnings:
            for message in collapse_warnings(health):
                self.warnings.append(message)
                if pl_module.trainer is None or pl_module.trainer.is_global_zero:
                    warnings.warn(message, CollapseWarning, stacklevel=2)
        return metrics

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        every = self.config.every_n_epochs
        if every == 0 or (trainer.current_epoch + 1) % every:
            return
        metrics = self.compute(pl_module)
        if metrics:
            self.history.append({"epoch": trainer.current_epoch, **metrics})
            pl_module.log_dict(metrics, rank_zero_only=True)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
