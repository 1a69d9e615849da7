"""``contrastkit finetune ENCODER --data texts.jsonl``: a text classifier from a sentence encoder and a few labels,
next to the frozen encoder's linear probe and TF-IDF + logistic regression, with its classifier file and report."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from contrastkit.backbones.encoder import Encoder, TextEncoder, typed_encoder
from contrastkit.finetuning.classifier import Classifier, save_classifier, text_tower_of
from contrastkit.finetuning.finetune import accuracy_table, run_folder
from contrastkit.finetuning.labelled_texts import LabelledTexts, read_labelled_texts
from contrastkit.finetuning.text_finetune import predict_texts, run_text_finetune, text_split
from contrastkit.finetuning.text_finetune_config import TextFinetuneConfig


@dataclass
class TextFinetuneResult:
    """What a text fine-tuning run measured on its test texts, and where it wrote its files."""

    classes: list[str]  # class names in class-id order
    labelled_texts: int  # labelled texts trained on (every row trains on exactly these)
    test_texts: int  # texts scored
    linear_probe: float  # test accuracy of logistic regression on the frozen encoder's embeddings
    finetuned: float | None  # after contrastive fine-tuning + logistic regression (None with freeze)
    tfidf: float | None  # TF-IDF + logistic regression on the same labels (None: not run)
    confusion: list[list[int]]  # confusion[true][predicted] of the exported classifier on the test texts
    source: str  # the data and where the test texts came from
    head: str = "logistic"  # stage 2 of the fine-tuned row: logistic regression, or LP-FT
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each part
    losses: list[float] = field(default_factory=list)  # the loss at every step: stage 1's, then LP-FT's
    run_dir: Path | None = None  # the run folder (None: nothing written)
    classifier_path: Path | None = None  # the exported classifier

    unit = "texts"  # what is classified (the report's wording)

    def rows(self) -> list[tuple[str, float]]:
        """(classifier, test accuracy) of every row that ran, in the table's order."""
        rows = [] if self.tfidf is None else [("TF-IDF + logistic regression (no pretraining)", self.tfidf)]
        rows.append(("linear probe (frozen encoder)", self.linear_probe))
        if self.finetuned is not None:
            stage_2 = "LP-FT" if self.head == "lp-ft" else "logistic reg."
            rows.append((f"fine-tuned (contrastive, then {stage_2})", self.finetuned))
        return rows

    def summary(self) -> str:
        return (
            f"{self.labelled_texts} labelled texts ({len(self.classes)} classes), {self.test_texts} test texts; "
            f"{self.source}"
        )

    def table(self) -> str:
        """The result as the terminal table."""
        return accuracy_table(self.summary(), self.rows())


def _text_encoder(encoder: str | os.PathLike | nn.Module) -> TextEncoder:
    from contrastkit.backbones.encoder_file import load_encoder

    if not isinstance(encoder, nn.Module):
        encoder = load_encoder(encoder)
    elif not isinstance(encoder, Encoder):  # a module with an encoder file's metadata
        encoder = typed_encoder(encoder, encoder.encoder_info)
    if not isinstance(encoder, TextEncoder):
        raise ValueError(
            f"a {encoder.kind} encoder cannot embed text: fine-tune a text encoder (a text-pairs or clip run, or "
            "`contrastkit import-encoder sentence-transformers:FOLDER`)"
        )
    return encoder


def _read(data: str | os.PathLike | LabelledTexts, text_field: str, label_field: str) -> LabelledTexts:
    return data if isinstance(data, LabelledTexts) else read_labelled_texts(data, text_field, label_field)


def finetune_texts(
    encoder: str | os.PathLike | nn.Module,
    data: str | os.PathLike | LabelledTexts,
    config: TextFinetuneConfig | None = None,
    *,
    test: str | os.PathLike | LabelledTexts | None = None,
    labels_per_class: int | None = None,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    text_field: str = "text",
    label_field: str = "label",
) -> TextFinetuneResult:
    """Fine-tune a text encoder on the labelled texts of ``data`` and score it on ``test`` (or a held-out part).

    Everything is checked before anything is trained or written: the settings, both files (UTF-8, fields, classes
    big enough, test labels seen in training) and the encoder. The run folder is written under a temporary name and
    renamed when complete: an interrupted run leaves no half folder, and an existing one is replaced only with
    ``overwrite``.

    Args:
        encoder: an encoder file that embeds text (text-pairs or clip run, imported sentence-transformers model),
            or a loaded one.
        data: a ``.jsonl`` / ``.csv`` / ``.tsv`` file of ``{text_field, label_field}`` rows, or :class:`LabelledTexts`.
        config: the settings (default :class:`TextFinetuneConfig`); ``labels_per_class`` given here replaces its own.
        test: the texts to score on (same format); default a seeded ``config.test_fraction`` of each class of ``data``.
        run_dir: where to write ``classifier.safetensors`` (+ ``.json``), ``labelled_rows.json``, ``finetune.json``
            and ``report.html``; None writes nothing.

    Raises:
        ValueError: bad settings or input (one line naming the file, row or field), an encoder that does not embed
            text, an existing run folder without ``overwrite``.
    """
    config = replace(config or TextFinetuneConfig())
    if labels_per_class is not None:
        config.labels_per_class = labels_per_class
    config.check()
    target = None
    if run_dir is not None:  # refused before anything is read
        run_dir = Path(run_dir)
        sources = [x for x in (encoder, data, test) if isinstance(x, (str, os.PathLike))]
        target = run_folder(run_dir, sources, overwrite)
    train = _read(data, text_field, label_field)
    held_out = None if test is None else _read(test, text_field, label_field)
    split, train_rows = text_split(train, held_out, config)
    encoder = _text_encoder(encoder)
    tower = text_tower_of(encoder)

    rows, classifier, seconds, losses = run_text_finetune(tower, split, config)
    predicted = predict_texts(classifier, split.test_texts).argmax(dim=1)
    k = len(split.classes)
    truth = torch.as_tensor(split.test_labels)
    confusion = torch.bincount(truth * k + predicted, minlength=k * k).view(k, k).tolist()
    result = TextFinetuneResult(
        classes=split.classes,
        labelled_texts=len(split.train_texts),
        test_texts=len(split.test_texts),
        linear_probe=float(rows["linear_probe"]),
        finetuned=rows["finetuned"],
        tfidf=rows["tfidf"],
        confusion=confusion,
        source=split.source,
        head=config.head,
        seconds=seconds,
        losses=losses,
        run_dir=run_dir,
    )
    if run_dir is not None:
        drawn = {"data": train.source, "seed": config.seed, "rows": train_rows.tolist()}
        with target.staged() as folder:
            _write_run(result, folder, classifier, dict(encoder.encoder_info), config, drawn)
        result.classifier_path = run_dir / "classifier.safetensors"
    return result


def _write_run(
    result: TextFinetuneResult, partial: Path, classifier: Classifier, info: dict, config: TextFinetuneConfig, drawn
) -> None:
    """The run's files, into ``partial`` (the staging folder renamed to ``result.run_dir`` when complete)."""
    from contrastkit.finetuning.finetune_report import write_finetune_report

    run_dir = result.run_dir
    trained = "linear probe" if result.finetuned is None else "fine-tuned"
    meta = {
        "inputs": "text",
        "encoder": {k: v for k, v in info.items() if k not in ("format", "format_version")},
        "classes": result.classes,
        "trained": trained,
        "data": drawn["data"],
        "finetune": asdict(config),
        "test_accuracy": result.finetuned if result.finetuned is not None else result.linear_probe,
    }
    save_classifier(classifier, partial / "classifier.safetensors", meta)
    (partial / "labelled_rows.json").write_text(json.dumps(drawn) + "\n", encoding="utf-8")
    summary = {k: v for k, v in asdict(result).items() if k not in ("run_dir", "classifier_path")}
    summary.update({"config": asdict(config), "classifier": str(run_dir / "classifier.safetensors")})
    (partial / "finetune.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_finetune_report(result, partial / "report.html", trained)


__all__ = ["TextFinetuneResult", "finetune_texts"]
