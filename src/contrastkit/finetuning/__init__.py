"""Fine-tuning an encoder on few labels: images (class-balanced label draws, LP-FT, a from-scratch baseline) and
texts (contrastive fine-tuning then logistic regression, SetFit's recipe), and the classifiers they export.

Importing this package does not import Lightning (the training part imports it when it runs).
"""

from contrastkit.finetuning.classifier import Classifier, ImageTower, TextTower, load_classifier, save_classifier
from contrastkit.finetuning.finetune import FinetuneResult, finetune, predict_images
from contrastkit.finetuning.finetune_config import FinetuneConfig
from contrastkit.finetuning.finetune_texts import TextFinetuneResult, finetune_texts
from contrastkit.finetuning.label_subset import balanced_label_subset
from contrastkit.finetuning.labelled_texts import LabelledTexts, read_labelled_texts
from contrastkit.finetuning.text_finetune import predict_texts
from contrastkit.finetuning.text_finetune_config import TextFinetuneConfig

__all__ = [
    "Classifier",
    "FinetuneConfig",
    "FinetuneResult",
    "ImageTower",
    "LabelledTexts",
    "TextFinetuneConfig",
    "TextFinetuneResult",
    "TextTower",
    "balanced_label_subset",
    "finetune",
    "finetune_texts",
    "load_classifier",
    "predict_images",
    "predict_texts",
    "read_labelled_texts",
    "save_classifier",
]
