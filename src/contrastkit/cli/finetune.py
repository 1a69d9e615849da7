"""``contrastkit finetune`` and ``contrastkit predict``: a classifier from an encoder and a few labels (images or
texts), and the predictions of one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _given(value, default):
    """A flag's value when it was given (0 included, so that the config refuses it), else the default."""
    return default if value is None else value


def run_finetune(args: argparse.Namespace) -> int:
    """`contrastkit finetune`: images or texts, by what --data names."""
    from contrastkit.finetuning.labelled_texts import is_text_data

    run_dir = Path(args.out) if args.out else Path(args.out_dir) / args.name
    if not args.out and (Path(args.name).name != args.name or args.name in ("", ".", "..")):
        raise ValueError(f"--name {args.name!r} is not a folder name inside --out-dir: give a plain name")
    if is_text_data(args.data):
        return _finetune_texts(args, run_dir)
    from contrastkit.finetuning import FinetuneConfig, finetune

    if args.labels_per_class is None and args.label_fraction is None:
        raise ValueError("images: give --labels-per-class N or --label-fraction F (labels drawn from the data)")
    for flag, value in (("--test", args.test), ("--objective", args.objective), ("--head", args.head)):
        if value is not None:
            raise ValueError(f"{flag} is for labelled texts (--data FILE.jsonl / .csv / .tsv), not images")
    config = FinetuneConfig(
        labels_per_class=args.labels_per_class,
        label_fraction=args.label_fraction,
        seed=args.seed,
        epochs=_given(args.epochs, FinetuneConfig.epochs),
        batch_size=_given(args.batch_size, FinetuneConfig.batch_size),
        lr=_given(args.lr, FinetuneConfig.lr),
        backbone_lr_ratio=args.backbone_lr_ratio,
        input_size=args.input_size,
        freeze=args.freeze,
        scratch=not args.no_scratch,
    )
    config.check()  # a bad setting is refused before the encoder or any data is read
    result = finetune(args.encoder, args.data, config, run_dir=run_dir, overwrite=args.overwrite)
    print(result.table())
    print(f"\nrun folder: {run_dir}")
    print(f"  classifier:  {result.classifier_path}  (contrastkit predict {run_dir} IMAGES...)")
    print(f"  labels used: {run_dir / 'labelled_indices.json'}")
    print(f"  report:      {run_dir / 'report.html'}  (accuracy table, confusion matrix)")
    return 0


def _finetune_texts(args: argparse.Namespace, run_dir: Path) -> int:
    from contrastkit.finetuning.finetune_texts import finetune_texts
    from contrastkit.finetuning.text_finetune_config import TextFinetuneConfig

    if args.label_fraction is not None:
        raise ValueError("--label-fraction is for images; for texts give --labels-per-class N, or nothing (all rows)")
    if args.input_size is not None:
        raise ValueError("--input-size is for images, not texts")
    defaults = TextFinetuneConfig()
    config = TextFinetuneConfig(
        labels_per_class=args.labels_per_class,
        seed=args.seed,
        objective=args.objective or defaults.objective,
        head=args.head or defaults.head,
        epochs=_given(args.epochs, defaults.epochs),
        batch_size=_given(args.batch_size, defaults.batch_size),
        lr=_given(args.lr, defaults.lr),
        freeze=args.freeze,
        tfidf=not args.no_scratch,
    )
    config.check()  # a bad setting is refused before the encoder or any data is read
    result = finetune_texts(
        args.encoder,
        args.data,
        config,
        test=args.test,
        run_dir=run_dir,
        overwrite=args.overwrite,
        text_field=args.text_field,
        label_field=args.label_field,
    )
    print(result.table())
    print(f"\nrun folder: {run_dir}")
    print(f"  classifier:  {result.classifier_path}  (contrastkit predict {run_dir} TEXTS.jsonl|.csv|.txt --out ...)")
    print(f"  labels used: {run_dir / 'labelled_rows.json'}")
    print(f"  report:      {run_dir / 'report.html'}  (accuracy table, confusion matrix)")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """`contrastkit predict`: a CSV of classes and probabilities."""
    from contrastkit.finetuning.predict import predict_paths
    from contrastkit.outputs.output_target import OutputTarget

    target = OutputTarget(args.out, [args.classifier, *args.paths], args.overwrite)  # before anything is read
    with target.staged() as out:
        summary = predict_paths(args.classifier, args.paths, out, args.batch_size, args.text_field)
        if summary.predicted == 0:
            first = f" (first: {summary.skipped[0].path}: {summary.skipped[0].reason})" if summary.skipped else ""
            raise ValueError(f"none of the {len(summary.skipped)} files could be read{first}; nothing was written")
    print(f"wrote {summary.predicted} predictions to {target.path}")
    if summary.accuracy is not None:
        print(f"accuracy against the file's labels: {summary.accuracy:.4f}")
    if summary.skipped:
        print(f"skipped {len(summary.skipped)} unreadable files:", file=sys.stderr)
        for item in summary.skipped:
            print(f"  {item.path}: {item.reason}", file=sys.stderr)
    return 0
