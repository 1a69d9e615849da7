"""Settings of a fine-tuning run: which labels, how long, how fast each part learns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FinetuneConfig:
    """How ``contrastkit finetune`` trains its classifier (and the from-scratch baseline, on the same budget).

    Linear probe first, then full fine-tuning from the probe's head (LP-FT, Kumar et al. 2022, "Fine-Tuning can
    Distort Pretrained Features and Underperform Out-of-Distribution"): a randomly initialised head would send
    large gradients through the pretrained features on the first steps; a fitted one does not. The pretrained
    encoder's batch-norm layers keep their statistics (eval mode) while its weights are fine-tuned. Defaults
    measured on Fashion-MNIST with the 2-epoch SimCLR recipe's encoder (benchmarks/finetune.py): milder crops than
    the supervised ImageNet recipe (area 0.8-1: at 0.35-1 a 28-pixel crop moves the features as much as another
    image does), the encoder at a tenth of the head's learning rate.
    """

    labels_per_class: int | None = None  # labelled images drawn per class (or label_fraction)
    label_fraction: float | None = None  # fraction of each class drawn (or labels_per_class)
    seed: int = 0  # the label draw, the head, the views and the scratch model's initialisation
    epochs: int = 100  # passes over the labelled subset, for fine-tuning and for the scratch baseline
    batch_size: int = 64  # labelled images per step
    lr: float = 1e-3  # AdamW learning rate of the head (and of every layer of the scratch baseline)
    backbone_lr_ratio: float = 0.1  # the pretrained encoder's learning rate, as a fraction of lr
    weight_decay: float = 0.05  # AdamW decoupled weight decay (not on biases and norm layers)
    warmup_fraction: float = 0.05  # linear warm-up, as a fraction of the steps, then cosine to zero
    crop_scale: tuple[float, float] = (0.8, 1.0)  # training views: random resized crop area range, and a flip
    label_smoothing: float = 0.1  # cross-entropy label smoothing
    input_size: int | None = None  # side of the images fed to the encoder (None: the size its file records); a
    # network pretrained at 224 px can run smaller and faster (Fashion-MNIST's 28 px images are upsampled to it)
    freeze: bool = False  # linear probe only: no full fine-tuning
    scratch: bool = True  # also train the same architecture from random initialisation on the same labels

    def check(self) -> None:
        """Refuse inconsistent settings before any data is read (ValueError naming the field)."""
        if (self.labels_per_class is None) == (self.label_fraction is None):
            raise ValueError("give exactly one of labels_per_class (--labels-per-class) and label_fraction")
        if self.labels_per_class is not None and self.labels_per_class < 1:
            raise ValueError(f"labels_per_class must be >= 1, got {self.labels_per_class}")
        if self.label_fraction is not None and not 0 < self.label_fraction <= 1:
            raise ValueError(f"label_fraction must be in (0, 1], got {self.label_fraction}")
        if self.input_size is not None and not 8 <= self.input_size <= 1024:
            raise ValueError(f"input_size must be in [8, 1024] pixels, got {self.input_size}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.lr == float("inf"):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        if not 0 <= self.backbone_lr_ratio <= 1:
            raise ValueError(f"backbone_lr_ratio must be in [0, 1], got {self.backbone_lr_ratio}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must be 0 < low <= high <= 1, got {self.crop_scale}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
