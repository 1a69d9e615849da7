"""``contrastkit predict``: classify image files and folders with an exported classifier, into a CSV."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from contrastkit.data.image_folder import IMAGE_EXTENSIONS, list_images
from contrastkit.data.resize_center_crop import resize_center_crop
from contrastkit.data.skip_report import Skipped, load_image_or_skip
from contrastkit.finetuning.classifier import load_classifier
from contrastkit.finetuning.finetune import predict_images


@dataclass
class PredictSummary:
    """What ``predict_paths`` wrote and what it could not read."""

    predicted: int  # rows written
    skipped: list[Skipped] = field(default_factory=list)  # unreadable files, each listed once
    out: Path | None = None
    accuracy: float | None = None  # texts with a label field: the share predicted right


def expand_paths(paths: list[str]) -> list[str]:
    """Image files named directly, and the image files under named folders (recursively, sorted), each once.

    Raises:
        FileNotFoundError: a path that does not exist (named).
    """
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(list_images(path, IMAGE_EXTENSIONS))
        elif os.path.exists(path):
            files.append(path)
        else:
            raise FileNotFoundError(f"{path!r} does not exist")
    return list(dict.fromkeys(files))


def predict_paths(
    classifier_path: str | os.PathLike,
    paths: list[str],
    out: str | os.PathLike,
    batch_size: int = 256,
    text_field: str = "text",
) -> PredictSummary:
    """Classify every image file in ``paths`` (files and folders), or with a text classifier every text of the
    ``paths`` (``.txt`` lines, ``.jsonl`` / ``.csv`` / ``.tsv`` rows), and write ``out`` as CSV.

    Columns: ``path`` (texts: ``text``), ``class`` (the predicted class name), ``probability`` (its softmax
    probability), then one ``p_<class>`` column per class. Files that cannot be read as images are skipped and
    returned, each once. Texts whose file has a ``label`` field are scored against it (a label the classifier was
    never trained on is refused, naming it). The CSV is written to a temporary name and renamed, so an interrupted
    run leaves no half file. ``classifier_path`` is the classifier file or the ``finetune`` run folder holding it.
    """
    classifier_path = Path(classifier_path)
    if classifier_path.is_dir():
        classifier_path = classifier_path / "classifier.safetensors"
    classifier = load_classifier(classifier_path)
    info = classifier.info
    if info.get("inputs") == "text":
        return _predict_texts(classifier, paths, Path(out), text_field)
    size, channels, classes = int(info["input_size"]), int(info["in_chans"]), list(info["classes"])
    files = expand_paths(paths)
    if not files:
        raise ValueError(f"no image files in {paths} (extensions {', '.join(IMAGE_EXTENSIONS)})")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    summary = PredictSummary(0, out=out)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "class", "probability", *(f"p_{c}" for c in classes)])
        for start in range(0, len(files), batch_size):
            names, images = [], []
            for path in files[start : start + batch_size]:
                image = load_image_or_skip(path, channels, min_side=size)  # a large JPEG: at a reduced scale
                if isinstance(image, Skipped):
                    summary.skipped.append(image)
                    continue
                names.append(path)
                images.append(resize_center_crop(image, size))
            if not images:
                continue
            probs = predict_images(classifier, torch.stack(images), info)  # (b, C)
            best = probs.argmax(dim=1)
            for path, row, b in zip(names, probs.tolist(), best.tolist(), strict=True):
                writer.writerow([path, classes[b], f"{row[b]:.6f}", *(f"{p:.6f}" for p in row)])
            summary.predicted += len(names)
    os.replace(tmp, out)
    return summary


def _predict_texts(classifier, paths: list[str], out: Path, text_field: str) -> PredictSummary:
    from contrastkit.finetuning.labelled_texts import LabelledTexts, read_texts_to_classify
    from contrastkit.finetuning.text_finetune import predict_texts

    classes = list(classifier.info["classes"])
    texts: list[str] = []
    labels: list[str] | None = []
    for path in paths:  # every file read and checked before anything is written
        more, more_labels = read_texts_to_classify(path, text_field)
        if more_labels is not None:
            LabelledTexts(more, more_labels, str(path)).ids(classes)  # a label never trained on: refused, named
        texts += more
        labels = None if labels is None or more_labels is None else labels + more_labels
    probs = predict_texts(classifier, texts)  # (N, C)
    best = probs.argmax(dim=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "class", "probability", *(f"p_{c}" for c in classes)])
        for text, row, b in zip(texts, probs.tolist(), best.tolist(), strict=True):
            writer.writerow([text, classes[b], f"{row[b]:.6f}", *(f"{p:.6f}" for p in row)])
    os.replace(tmp, out)
    accuracy = None
    if labels:
        accuracy = sum(classes[b] == y for b, y in zip(best.tolist(), labels, strict=True)) / len(labels)
    return PredictSummary(len(texts), out=out, accuracy=accuracy)
