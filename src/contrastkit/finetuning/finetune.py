"""``contrastkit finetune``: a classifier from an encoder and a few labels, next to a linear probe and scratch."""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit.backbones.encoder import Encoder, ImageEncoder, ImageTextEncoder, typed_encoder
from contrastkit.eval.embed_images import embed_images
from contrastkit.eval.linear_probe import fit_linear_probe
from contrastkit.finetuning.classifier import Classifier, image_encoder_of, save_classifier
from contrastkit.finetuning.finetune_config import FinetuneConfig
from contrastkit.finetuning.label_subset import balanced_label_subset
from contrastkit.finetuning.labelled_data import load_labelled_data, take_labelled
from contrastkit.outputs.output_target import OutputTarget
from contrastkit.views.supervised_views import SupervisedViews

ZERO_SHOT_LOGIT_SCALE = 1 / 0.07  # a CLIP head starts at the zero-shot class embeddings times this (CLIP's 1/tau)
HEAD_INIT_VIEWS = 8  # the fine-tuning head starts from a probe fitted on this many training views of each image
HEAD_INIT_WEIGHT_DECAY = 1e-2  # ... with this L2 strength: calibrated on the views it will be trained on


@dataclass
class FinetuneResult:
    """What a fine-tuning run measured on the test split, and where it wrote its files."""

    classes: list[str]  # class names in class-id order
    labelled_images: int  # labelled training images used (all three rows train on exactly these)
    test_images: int  # images of the test split scored
    linear_probe: float  # test accuracy of a logistic regression on the frozen encoder's features
    finetuned: float | None  # test accuracy after full fine-tuning (None with freeze)
    scratch: float | None  # test accuracy of the same architecture trained from random init (None: not run)
    zero_shot: float | None  # test accuracy of zero-shot classification (image-text encoders only)
    confusion: list[list[int]]  # confusion[true][predicted] of the exported classifier on the test split
    source: str  # the data and how it was split
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each part
    run_dir: Path | None = None  # the run folder (None: nothing written)
    classifier_path: Path | None = None  # the exported classifier

    unit = "images"  # what is classified (the report's wording)

    def rows(self) -> list[tuple[str, float]]:
        """(classifier, test accuracy) of every row that ran, in the table's order."""
        rows = [("linear probe (frozen encoder)", self.linear_probe)]
        if self.zero_shot is not None:
            rows.insert(0, ("zero-shot (class names only)", self.zero_shot))
        if self.finetuned is not None:
            rows.append(("fine-tuned (LP-FT)", self.finetuned))
        if self.scratch is not None:
            rows.append(("from scratch, same labels and budget", self.scratch))
        return rows

    def summary(self) -> str:
        return (
            f"{self.labelled_images} labelled images ({len(self.classes)} classes), {self.test_images} test images; "
            f"{self.source}"
        )

    def table(self) -> str:
        """The result as the terminal table."""
        return accuracy_table(self.summary(), self.rows())


def accuracy_table(summary: str, rows: list[tuple[str, float]]) -> str:
    """The terminal table of a fine-tuning run: its summary line, then one line per classifier."""
    header = f"{'classifier':<44}{'test accuracy':>14}"
    lines = [summary, header, "-" * len(header)]
    return "\n".join([*lines, *(f"{name:<44}{acc:>14.4f}" for name, acc in rows)])


@torch.no_grad()
def predict_images(classifier: nn.Module, images: Tensor, info: dict[str, Any], batch_size: int = 512) -> Tensor:
    """Class probabilities ``(N, C)`` of uint8 images ``(N, C, H, W)``, prepared as ``info`` says (evaluation view:
    resized to ``input_size``, scaled, normalised)."""
    device = next(classifier.parameters()).device
    classifier.eval()
    logits = embed_images(
        classifier, images, tuple(info["mean"]), tuple(info["std"]), int(info["input_size"]), device, batch_size
    )
    return logits.softmax(dim=1)  # (N, C)


def _accuracy(classifier: nn.Module, images: Tensor, labels: Tensor, info: dict) -> tuple[float, Tensor]:
    predicted = predict_images(classifier, images, info).argmax(dim=1)  # (N,)
    return float((predicted == labels).float().mean()), predicted


def _confusion(labels: Tensor, predicted: Tensor, num_classes: int) -> list[list[int]]:
    counts = torch.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes).tolist()


def _with_head(encoder: nn.Module, weight: Tensor, bias: Tensor) -> Classifier:
    """A classifier of a copy of ``encoder`` whose head starts at ``weight`` ``(K, D)`` and ``bias`` ``(K,)``."""
    classifier = Classifier(copy.deepcopy(encoder), len(bias))
    classifier.head.weight.data.copy_(weight)
    classifier.head.bias.data.copy_(bias)
    return classifier


@torch.no_grad()
def _head_init(
    encoder: nn.Module, images: Tensor, labels: Tensor, views: SupervisedViews, k: int, seed: int
) -> tuple[Tensor, Tensor]:
    """The fine-tuning head's start: a probe fitted on the frozen features of training *views* of the labelled
    images, not of the images themselves. LP-FT needs a head that is already right on what fine-tuning trains on;
    one fitted on clean images with the probe's (small) chosen L2 is confidently wrong on crops, and its first
    gradients distort the features."""
    generator = torch.Generator().manual_seed(seed)
    device = next(encoder.parameters()).device
    feats = [encoder(views.batch(images, generator)[0].to(device)).float().cpu() for _ in range(HEAD_INIT_VIEWS)]
    probe = fit_linear_probe(
        torch.cat(feats), labels.repeat(HEAD_INIT_VIEWS), k, weight_decays=(HEAD_INIT_WEIGHT_DECAY,), seed=seed
    )
    return probe.weight, probe.bias


def run_folder(run_dir: str | os.PathLike, inputs: list, overwrite: bool) -> OutputTarget:
    """A fine-tuning run's folder: refused (before anything is read) if it holds an earlier run and ``overwrite``
    is not set, if it holds other files, or if it is or holds an input; written whole when the run completes."""
    markers = ("finetune.json", "classifier.safetensors")
    return OutputTarget(run_dir, inputs, overwrite, folder=True, markers=markers, option="run folder")


def finetune(
    encoder: str | os.PathLike | nn.Module,
    data: str,
    config: FinetuneConfig | None = None,
    *,
    labels_per_class: int | None = None,
    label_fraction: float | None = None,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    accelerator: str = "auto",
) -> FinetuneResult:
    """Fine-tune ``encoder`` on a class-balanced labelled subset of ``data`` and score it on the test split.

    Steps: draw ``labels_per_class`` (or ``label_fraction``) labelled images per class with ``config.seed``; fit a
    linear probe on the frozen encoder's features of them (its L2 strength chosen on a held-out part); then, unless
    ``config.freeze``, train the encoder and a head started from the probe (an image-text encoder's head starts
    from its zero-shot class embeddings instead: the classifier its pretraining already learned, usable from one
    label per class) with AdamW, the encoder at ``lr * backbone_lr_ratio``, cosine schedule, supervised views
    (random resized crop + flip); and train the same architecture from random initialisation on the same images
    with the same budget (``config.scratch``).

    Args:
        encoder: an encoder file (``contrastkit train`` / ``export`` / ``import-encoder``) or a loaded encoder.
        data: a labelled built-in data set (its train split is the pool, its test split the test set) or a folder
            of class sub-folders (a seeded fifth held out for testing).
        config: the settings (default :class:`FinetuneConfig`); ``labels_per_class`` / ``label_fraction`` given
            here replace its own.
        run_dir: where to write the classifier (``classifier.safetensors`` + ``.json``), ``labelled_indices.json``,
            ``finetune.json`` and ``report.html``; None writes nothing.
        overwrite: replace an existing run folder (otherwise refused: nothing is destroyed by accident).
        accelerator: Lightning's accelerator for the training parts.

    Raises:
        ValueError: inconsistent settings (before any data is read), a text encoder, unlabelled data, a class with
            too few images, or an existing run folder.
    """
    from contrastkit.backbones.encoder_file import load_encoder

    config = replace(config or FinetuneConfig())
    if labels_per_class is not None or label_fraction is not None:
        config.labels_per_class, config.label_fraction = labels_per_class, label_fraction
    config.check()
    target = None
    if run_dir is not None:
        run_dir = Path(run_dir)
        target = run_folder(run_dir, [encoder if not isinstance(encoder, nn.Module) else None, data], overwrite)
    if not isinstance(encoder, nn.Module):
        encoder = load_encoder(encoder)
    elif not isinstance(encoder, Encoder):  # a module with an encoder file's metadata
        encoder = typed_encoder(encoder, encoder.encoder_info)
    info = dict(encoder.encoder_info)
    if not isinstance(encoder, ImageEncoder):
        raise ValueError(
            f"a {encoder.kind} encoder cannot classify images: fine-tune an image or image-text (clip) encoder"
        )
    size, channels = int(config.input_size or info["input_size"]), int(info["in_chans"])
    prep = {"input_size": size, "in_chans": channels, "mean": list(info["mean"]), "std": list(info["std"])}
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    data_set = load_labelled_data(data, size, channels, config.seed)
    classes, k = data_set.classes, len(data_set.classes)
    indices = balanced_label_subset(
        data_set.pool_labels, config.labels_per_class, config.label_fraction, config.seed, classes
    )
    images, labels = take_labelled(data_set, indices)  # (n, C, H, W) uint8, (n,)
    test_images, test_labels = data_set.test_images, data_set.test_labels
    seconds["data"] = time.perf_counter() - start

    start = time.perf_counter()
    image_encoder = image_encoder_of(encoder).eval()

    def features(model: nn.Module, x: Tensor) -> Tensor:
        device = next(model.parameters()).device
        return embed_images(model, x, tuple(prep["mean"]), tuple(prep["std"]), size, device)

    probe = fit_linear_probe(features(image_encoder, images), labels, k, seed=config.seed)
    test_features = features(image_encoder, test_images)  # (M, D): the frozen encoder, once for probe and zero-shot
    predicted = (test_features @ probe.weight.t() + probe.bias).argmax(dim=1)  # (M,)
    probe_acc = float((predicted == test_labels).float().mean())
    seconds["linear probe"] = time.perf_counter() - start

    zero_shot_acc, zero_shot_head = None, None
    if isinstance(encoder, ImageTextEncoder):
        from contrastkit.eval.zero_shot import zero_shot_classifier

        zero_shot_head = zero_shot_classifier(encoder, classes)  # (K, E); the tower's features are normalised
        zero_shot_acc = float(((test_features @ zero_shot_head.t()).argmax(dim=1) == test_labels).float().mean())

    from contrastkit.finetuning.lit_classifier import fit_classifier

    train_views = SupervisedViews(size, channels, crop_scale=config.crop_scale, mean=prep["mean"], std=prep["std"])
    finetuned_acc, final = None, None
    if not config.freeze:
        start = time.perf_counter()
        if zero_shot_head is not None:
            head = zero_shot_head * ZERO_SHOT_LOGIT_SCALE, torch.zeros(k)
        else:
            head = _head_init(image_encoder, images, labels, train_views, k, config.seed)
        model = _with_head(image_encoder, *head)
        backbone_lr = config.lr * config.backbone_lr_ratio
        fit_classifier(model, images, labels, train_views, config, config.lr, backbone_lr, True, accelerator)
        finetuned_acc, predicted = _accuracy(model, test_images, test_labels, prep)
        final = model
        seconds["fine-tuning"] = time.perf_counter() - start

    scratch_acc = None
    if config.scratch:
        from contrastkit.backbones.encoder_file import build_encoder

        start = time.perf_counter()
        torch.manual_seed(config.seed)
        scratch = Classifier(image_encoder_of(typed_encoder(build_encoder(info), info)), k)
        fit_classifier(scratch, images, labels, train_views, config, config.lr, config.lr, False, accelerator)
        scratch_acc, _ = _accuracy(scratch, test_images, test_labels, prep)
        seconds["scratch"] = time.perf_counter() - start

    result = FinetuneResult(
        classes=classes,
        labelled_images=len(labels),
        test_images=len(test_labels),
        linear_probe=probe_acc,
        finetuned=finetuned_acc,
        scratch=scratch_acc,
        zero_shot=zero_shot_acc,
        confusion=_confusion(test_labels, predicted, k),
        source=data_set.source,
        seconds=seconds,
        run_dir=run_dir,
    )
    if target is not None:
        final = final or _with_head(image_encoder, probe.weight, probe.bias)  # --freeze exports the probe
        drawn = {"data": data, "source": data_set.source, "seed": config.seed, "indices": indices.tolist()}
        with target.staged() as folder:
            _write_run(result, folder, final, info, prep, config, drawn)
        result.classifier_path = run_dir / "classifier.safetensors"
    return result


def _write_run(
    result: FinetuneResult, folder: Path, classifier: Classifier, info: dict, prep: dict, config, drawn: dict
) -> None:
    """The run's files, into ``folder`` (the staging folder renamed to ``result.run_dir`` when complete)."""
    from contrastkit.finetuning.finetune_report import write_finetune_report

    run_dir, data = result.run_dir, drawn["data"]
    (folder / "labelled_indices.json").write_text(json.dumps(drawn) + "\n", encoding="utf-8")
    trained = "linear probe" if result.finetuned is None else "fine-tuned (LP-FT)"
    meta = {
        "encoder": {k: v for k, v in info.items() if k not in ("format", "format_version")},
        "classes": result.classes,
        **prep,
        "trained": trained,
        "data": data,
        "finetune": asdict(config),
        "test_accuracy": result.finetuned if result.finetuned is not None else result.linear_probe,
    }
    save_classifier(classifier, folder / "classifier.safetensors", meta)
    summary = {k: v for k, v in asdict(result).items() if k not in ("run_dir", "classifier_path")}
    summary.update({"config": asdict(config), "data": data, "classifier": str(run_dir / "classifier.safetensors")})
    (folder / "finetune.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_finetune_report(result, folder / "report.html", trained)


__all__ = ["FinetuneResult", "finetune", "predict_images"]
