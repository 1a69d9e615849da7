"""Fine-tuning an encoder on few labels: class-balanced label draws, LP-FT, a from-scratch baseline, classifiers.

Importing this package does not import Lightning (the training part imports it when it runs).
"""

from contrastkit.finetuning.classifier import Classifier, ImageTower, load_classifier, save_classifier
from contrastkit.finetuning.finetune import FinetuneResult, finetune, predict_images
from contrastkit.finetuning.finetune_config import FinetuneConfig
from contrastkit.finetuning.label_subset import balanced_label_subset

__all__ = [
    "Classifier",
    "FinetuneConfig",
    "FinetuneResult",
    "ImageTower",
    "balanced_label_subset",
    "finetune",
    "load_classifier",
    "predict_images",
    "save_classifier",
]
