"""Training a :class:`Classifier` on labelled images with Lightning: augmented views, two learning rates, cosine."""

from __future__ import annotations

import logging
import math
import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from contrastkit.finetuning.classifier import Classifier
from contrastkit.finetuning.finetune_config import FinetuneConfig
from contrastkit.optim.parameter_groups import parameter_groups
from contrastkit.optim.warmup_cosine import WarmupCosine
from contrastkit.views.multi_views import MultiViews


class LitClassifier(pl.LightningModule):
    """Cross-entropy training of ``classifier`` on one augmented view per labelled image.

    Args:
        classifier: the encoder and its head.
        views: a one-view :class:`MultiViews` (the training view); run batched on the batch's device.
        head_lr: AdamW learning rate of the head.
        backbone_lr: AdamW learning rate of the encoder (0: frozen, kept in eval mode).
        freeze_norm: keep the encoder's batch-norm layers in eval mode (their running statistics, not the
            batch's): for a pretrained encoder, whose statistics a few hundred augmented images would only blur.
        config: weight decay, warm-up, label smoothing and the seed of the views.
        total_steps: optimiser steps of the whole run (for the schedule).
    """

    def __init__(
        self,
        classifier: Classifier,
        views: MultiViews,
        head_lr: float,
        backbone_lr: float,
        config: FinetuneConfig,
        total_steps: int,
        freeze_norm: bool = False,
    ) -> None:
        super().__init__()
        self.freeze_norm = freeze_norm
        self.classifier, self.views, self.config = classifier, views, config
        self.head_lr, self.backbone_lr, self.total_steps = head_lr, backbone_lr, total_steps
        self.generator = torch.Generator().manual_seed(config.seed)
        self.frozen = backbone_lr == 0
        if self.frozen:
            self.classifier.encoder.requires_grad_(False)

    def on_train_epoch_start(self) -> None:
        if self.frozen:  # a frozen encoder keeps its batch-norm statistics
            self.classifier.encoder.eval()
        elif self.freeze_norm:
            for module in self.classifier.encoder.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch  # (B, C, H, W) uint8, (B,)
        (x,) = self.views.batch(images, self.generator)  # (B, C, S, S) float
        logits = self.classifier(x.to(images.device))  # (B, K)
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.config.label_smoothing)

    def configure_optimizers(self):
        groups = []
        for module, lr in ((self.classifier.encoder, self.backbone_lr), (self.classifier.head, self.head_lr)):
            if lr > 0:
                groups += [dict(g, lr=lr) for g in parameter_groups(module, self.config.weight_decay)]
        for g in groups:
            g.pop("lars_exclude")
        optimizer = torch.optim.AdamW(groups)
        warmup = math.floor(self.config.warmup_fraction * self.total_steps)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, self.total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def fit_classifier(
    classifier: Classifier,
    images: Tensor,
    labels: Tensor,
    views: MultiViews,
    config: FinetuneConfig,
    head_lr: float,
    backbone_lr: float,
    freeze_norm: bool = False,
    accelerator: str = "auto",
) -> Classifier:
    """Train ``classifier`` for ``config.epochs`` passes over ``images`` (uint8 ``(N, C, H, W)``) and ``labels``.

    The batches are drawn with ``config.seed``; a last batch of a single image is dropped (batch norm needs two).
    Returns the classifier, trained, in eval mode.
    """
    n = len(labels)
    batch_size = min(config.batch_size, n)
    drop_last = n % batch_size == 1
    loader = DataLoader(
        TensorDataset(images, labels),
        batch_size=batch_size,
        shuffle=True,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(config.seed),
    )
    steps = len(loader) * config.epochs
    module = LitClassifier(classifier, views, head_lr, backbone_lr, config, steps, freeze_norm)
    lightning_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)  # no "GPU available: ..." lines for each of a run's short fits
    try:
        trainer = pl.Trainer(
            max_epochs=config.epochs,
            accelerator=accelerator,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        with warnings.catch_warnings():  # an in-memory loader needs no workers; Lightning says so every fit
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            trainer.fit(module, loader)
    finally:
        lightning_log.setLevel(level)
    return classifier.eval()
