"""Settings of a few-shot text classification run (``contrastkit finetune ENCODER --data texts.jsonl``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

OBJECTIVES = ("supcon", "triplets")
HEADS = ("logistic", "lp-ft")


@dataclass
class TextFinetuneConfig:
    """How ``contrastkit finetune`` trains a text classifier, SetFit's recipe with contrastkit's losses (Tunstall et
    al. 2022, "Efficient Few-Shot Learning Without Prompts", arXiv 2209.11055): stage 1 fine-tunes the sentence
    encoder contrastively on the labelled texts, stage 2 fits a logistic-regression head on its embeddings.

    Stage 1 objectives: ``triplets`` (the default), anchor / positive / negative texts drawn from the labels, anchors
    of distinct classes per batch, ranked against all the batch's positives and negatives (multiple-negatives
    ranking, Henderson et al. 2017, arXiv 1705.00652); ``supcon``, the supervised contrastive loss over batches in
    which every text has others of its class (Khosla et al. 2020, arXiv 2004.11362). Measured in
    ``benchmarks/fewshot_text.py`` (WordNet nouns, 25 classes, 8 labels each, MiniLM): triplets 0.645 in 179 s,
    supcon 0.617 in 54 s, SetFit's defaults 0.620 in 1,623 s.
    """

    labels_per_class: int | None = None  # labelled texts drawn per class from the training rows (None: all of them)
    seed: int = 0  # the label draw, the held-out split, the batches
    objective: str = "triplets"  # stage 1: triplets (more accurate) or supcon (about 3x faster); fewshot_text.py
    epochs: int = 10  # passes over the labelled texts in stage 1
    batch_size: int = 32  # texts per step (triplets: anchors per step, each with a positive and a negative)
    lr: float = 5e-5  # AdamW learning rate of the encoder in stage 1 (linear warm-up, then linear decay to 0)
    weight_decay: float = 0.01  # AdamW decoupled weight decay (not on biases and norm layers)
    warmup_fraction: float = 0.1  # warm-up steps as a fraction of stage 1's steps
    temperature: float = 0.05  # softmax temperature of the stage 1 loss
    head: str = "logistic"  # stage 2: logistic (regression on the embeddings) or lp-ft (then encoder + head trained)
    head_epochs: int = 4  # lp-ft: epochs of cross-entropy training of the encoder and the head together
    test_fraction: float = 0.2  # without a test file: this fraction of each class is held out for testing
    freeze: bool = False  # linear probe on the frozen encoder only: no stage 1
    tfidf: bool = True  # also train TF-IDF + logistic regression on the same labels (no pretraining)

    def check(self) -> None:
        """Refuse inconsistent settings before any data is read (ValueError naming the field)."""
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.labels_per_class is not None and self.labels_per_class < 2:
            raise ValueError(f"labels_per_class must be >= 2 (a class needs a pair), got {self.labels_per_class}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.freeze and self.head == "lp-ft":
            raise ValueError("head 'lp-ft' trains the encoder, freeze keeps it frozen: choose one")
        for name in ("epochs", "batch_size", "head_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        for name in ("lr", "temperature"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
