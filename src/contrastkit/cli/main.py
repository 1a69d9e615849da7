"""``contrastkit`` command: one sub-command per job, each a small function over the library.

Argument parsing uses the standard library's ``argparse``; configs use OmegaConf (``contrastkit.train.config``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from contrastkit.cli.prepare import add_prepare_command
from contrastkit.cli.search import add_search_commands
from contrastkit.extras import missing_extra

EPILOG = """examples:
  contrastkit recipes
  contrastkit train simclr-fashion-mnist trainer.max_epochs=5
  contrastkit train byol-cifar10 data.path=~/images trainer.devices=2 trainer.precision=bf16-mixed
  contrastkit train my-config.yaml resume=last
  contrastkit prepare ~/images --out ~/images-256 && contrastkit train simclr-imagenet data.path=~/images-256
  contrastkit export runs/simclr-fashion-mnist/checkpoints/last.ckpt --out encoder.safetensors
  contrastkit embed runs/simclr-fashion-mnist/encoder.safetensors fashion-mnist --split test --out emb/
  contrastkit eval runs/simclr-fashion-mnist/encoder.safetensors --data fashion-mnist
  contrastkit report runs/simclr-fashion-mnist
  contrastkit train clip-fashion-mnist && contrastkit zeroshot runs/clip-fashion-mnist/encoder.safetensors \
      --data fashion-mnist
  contrastkit search gallery.faiss --text "a pair of trousers" -k 5
  contrastkit finetune runs/simclr-fashion-mnist/encoder.safetensors --data fashion-mnist --labels-per-class 10
  contrastkit predict runs/finetune/classifier.safetensors photos/ --out predictions.csv
  contrastkit import-encoder torchvision:resnet50 --weights resnet50.pth --out resnet50.safetensors
"""


def _train(args: argparse.Namespace) -> int:
    from contrastkit.train.config import config_to_dict, load_config

    config = load_config(args.recipe, args.overrides)  # refuses a bad config before any data is read
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config_to_dict(config), sort_keys=False), end="")
        return 0
    from contrastkit.train.fit import train

    result = train(config)
    if result.encoder is not None:
        print(f"\nrun folder: {result.run_dir}")
        print(f"  encoder:     {result.encoder}  (contrastkit.load_encoder)")
        kept = [o for o in args.overrides if not o.startswith(("resume=", "overwrite="))]  # resume continues it
        again = " ".join([args.recipe, *kept, "resume=last"])
        print(f"  checkpoint:  {result.checkpoint}  (continue with: contrastkit train {again})")
        print(f"  logs:        {result.run_dir / 'logs' / 'metrics.csv'}")
    return 0  # train() has destroyed the process group a distributed run started


def _recipes(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from contrastkit.train.config import list_recipes, recipe_path

    names = list_recipes()
    width = max(len(n) for n in names)
    for name in names:
        description = OmegaConf.load(recipe_path(name)).get("description", "")
        print(f"{name:<{width}}  {description}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from contrastkit.cli.export import encoder_output, export_checkpoint

    target = encoder_output(args.out, [args.checkpoint], args.overwrite)  # refused before the checkpoint is read
    with target.staged() as path:
        export_checkpoint(args.checkpoint, path)
    print(f"wrote {target.path} and {target.companions[0]}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from contrastkit.cli.embed import run_embed

    return run_embed(args)


def _eval(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    import torch

    from contrastkit.backbones.encoder import ImageEncoder
    from contrastkit.backbones.encoder_file import build_encoder, load_encoder
    from contrastkit.data import ArrayImageDataset, load_dataset
    from contrastkit.data.labelled import FixedSizeImages, has_test_split, hold_out, take
    from contrastkit.eval import evaluate_encoder, format_report
    from contrastkit.outputs.output_target import OutputTarget

    report = None
    if args.json:  # refused before anything is read
        report = OutputTarget(args.json, [args.encoder, args.data], args.overwrite, option="--json")
    encoder = load_encoder(args.encoder)
    info = encoder.encoder_info
    if not isinstance(encoder, ImageEncoder):
        raise ValueError(
            f"{args.encoder}: a {info['kind']} encoder; contrastkit eval scores image encoders (text-pairs and CPC "
            "runs write their own scores to final_eval.json)"
        )
    rng = np.random.default_rng(args.seed)

    def prepared(dataset):
        if isinstance(dataset, ArrayImageDataset):
            return dataset
        return FixedSizeImages(dataset, int(info["input_size"]), int(info["in_chans"]))

    if has_test_split(args.data):
        train_set, test_set = (prepared(load_dataset(args.data, split=s)) for s in ("train", "test"))
        train = take(train_set, rng.permutation(len(train_set))[: args.train_size])
        test = take(test_set, rng.permutation(len(test_set))[: args.test_size])
    else:
        dataset = prepared(load_dataset(args.data))
        held, rest = hold_out(rng.permutation(len(dataset)), args.test_size)
        test, train = take(dataset, held), take(dataset, rest[: args.train_size])
    if len(train.labels) == 0 or len(test.labels) == 0:
        raise ValueError(f"{args.data}: no labelled images to evaluate on (class folders or a labelled data set)")
    torch.manual_seed(args.seed)
    random_init = build_encoder(info, args.encoder)  # the same architecture, randomly initialised
    result = evaluate_encoder(
        encoder, (train.images, train.labels), (test.images, test.labels), random_init, k=args.k, seed=args.seed
    )
    print(format_report(result))
    if report is not None:
        with report.staged() as path, open(path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from contrastkit.outputs.output_target import OutputTarget
    from contrastkit.report import write_report

    run_dir = Path(args.run_dir).expanduser()
    inputs = [run_dir / name for name in ("config.json", "encoder.safetensors", "final_eval.json", "logs")]
    target = OutputTarget(args.out or run_dir / "report.html", inputs, args.overwrite)  # before the run is read
    with target.staged() as path:
        write_report(run_dir, path, max_points=args.max_points)
    print(target.path)
    return 0


def _zeroshot(args: argparse.Namespace) -> int:
    from contrastkit.cli.zeroshot import run_zeroshot

    print(run_zeroshot(args.encoder, args.data, args.classes, args.templates, args.split, args.limit, args.seed))
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from contrastkit.cli.finetune import run_finetune

    return run_finetune(args)


def _predict(args: argparse.Namespace) -> int:
    from contrastkit.cli.finetune import run_predict

    return run_predict(args)


def _import_encoder(args: argparse.Namespace) -> int:
    from contrastkit.backbones.import_encoder import import_encoder
    from contrastkit.cli.export import encoder_output

    folder = args.source.partition(":")[2] if args.source.startswith(("hf:", "sentence-transformers:")) else None
    target = encoder_output(args.out, [args.weights, folder], args.overwrite)
    with target.staged() as path:
        import_encoder(args.source, path, args.weights)
    print(f"wrote {target.path} and {target.companions[0]} (contrastkit.load_encoder; every command takes it)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contrastkit",
        description="Contrastive representation learning: train, export and use encoders.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("train", help="train an encoder from a recipe or YAML config, with key=value overrides")
    p.add_argument("recipe", metavar="RECIPE_OR_CONFIG", help="a built-in recipe (contrastkit recipes) or a .yaml file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. trainer.max_epochs=5 data.path=~/images")
    p.add_argument("--print-config", action="store_true", help="print the validated config and exit")
    p.set_defaults(func=_train)
    p = sub.add_parser("recipes", help="list the built-in recipes")
    p.set_defaults(func=_recipes)
    p = sub.add_parser("export", help="write a checkpoint's encoder as safetensors (+ its config as JSON)")
    p.add_argument("checkpoint", metavar="CKPT", help="a .ckpt written by contrastkit train")
    p.add_argument("--out", required=True, help="output file, e.g. encoder.safetensors")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output of the same name")
    p.set_defaults(func=_export)
    p = sub.add_parser("embed", help="embed a data set with an encoder: embeddings.npy + ids.txt, streamed")
    p.add_argument("encoder", metavar="ENCODER", help="an encoder.safetensors from contrastkit train / export")
    p.add_argument(
        "data", metavar="DATA", help="a built-in data set name or a path (folder, listing, ...); texts: .txt / .jsonl"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier embed output in that folder")
    p.add_argument("--split", default=None, help="split of a built-in data set (default: train)")
    p.add_argument("--float16", action="store_true", help="store float16 embeddings (half the disk)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    shard_help = (
        "write shards of this many inputs (resumable: finished shards are skipped) and a manifest; under torchrun "
        "the processes share the shards (default there: 50000)"
    )
    p.add_argument("--shard-size", type=int, default=None, help=shard_help)
    p.set_defaults(func=_embed)
    add_prepare_command(sub)
    p = sub.add_parser("eval", help="kNN, linear probe, retrieval and health of an encoder vs random init and pixels")
    p.add_argument("encoder", metavar="ENCODER", help="an encoder.safetensors from contrastkit train / export")
    p.add_argument("--data", required=True, help="a labelled built-in data set (its test split is used) or a path")
    p.add_argument("--train-size", type=int, default=10000, help="labelled training images (bank, probe, gallery)")
    p.add_argument("--test-size", type=int, default=10000, help="held-out images (queries)")
    p.add_argument("--k", type=int, default=200, help="kNN neighbours")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output of the same name")
    p.set_defaults(func=_eval)
    p = sub.add_parser("report", help="one self-contained HTML report of a run: curves, t-SNE map, neighbours, health")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by contrastkit train")
    p.add_argument("--out", default=None, help="output HTML file (default: RUN_DIR/report.html)")
    p.add_argument("--max-points", type=int, default=2000, help="held-out images embedded for the map (default 2000)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output of the same name")
    p.set_defaults(func=_report)
    add_search_commands(sub)
    p = sub.add_parser("zeroshot", help="classify images by class names in words, with an encoder from a clip run")
    p.add_argument("encoder", metavar="ENCODER", help="an encoder.safetensors from a clip run (image and text towers)")
    p.add_argument("--data", required=True, help="a labelled built-in data set (test split) or a class-folder path")
    p.add_argument("--classes", default=None, help='class names in class-id order, "a,b,c" (default: the data\'s)')
    p.add_argument("--templates", default=None, help='"|"-separated sentences with {} for the class name')
    p.add_argument("--split", default=None, help="split of a built-in data set (default: test)")
    p.add_argument("--limit", type=int, default=10000, help="images scored")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_zeroshot)
    p = sub.add_parser(
        "import-encoder", help="a pretrained torchvision, timm, open_clip, Hugging Face or sentence-transformers model"
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="torchvision:ARCH, timm:MODEL, open_clip:MODEL (with --weights), hf:FOLDER (a transformers folder) or "
        "sentence-transformers:FOLDER (a sentence-transformers model folder: a text encoder)",
    )
    p.add_argument(
        "--weights", default=None, help="local weights file (.pth read weights-only, or .safetensors); not for folders"
    )
    p.add_argument("--out", required=True, help="output encoder file, e.g. encoder.safetensors")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output of the same name")
    p.set_defaults(func=_import_encoder)
    p = sub.add_parser(
        "finetune", help="fine-tune an encoder on a few labels (images or texts): vs its linear probe and a baseline"
    )
    p.add_argument("encoder", metavar="ENCODER", help="an encoder.safetensors (train, export or import-encoder)")
    p.add_argument(
        "--data",
        required=True,
        help="images: a labelled built-in data set or a folder of class sub-folders; texts: a .jsonl / .csv / .tsv "
        "file of text and label fields",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--labels-per-class", type=int, help="labels drawn per class (texts: default all rows)")
    size.add_argument("--label-fraction", type=float, help="images: fraction of each class drawn, e.g. 0.01")
    p.add_argument("--test", default=None, help="texts: a file of test texts (default: a fifth of each class)")
    p.add_argument("--text-field", default="text", help="texts: the field holding the text (default text)")
    p.add_argument("--label-field", default="label", help="texts: the field holding the label (default label)")
    p.add_argument(
        "--objective", default=None, choices=("supcon", "triplets"), help="texts: stage 1's loss (default triplets)"
    )
    p.add_argument(
        "--head",
        default=None,
        choices=("logistic", "lp-ft"),
        help="texts: stage 2, logistic regression on the embeddings (default) or LP-FT (then encoder + head trained)",
    )
    p.add_argument("--freeze", action="store_true", help="linear probe only: keep the encoder frozen")
    p.add_argument("--no-scratch", action="store_true", help="leave out the baseline (from scratch / TF-IDF)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the labels (images 100, texts 10)")
    p.add_argument("--batch-size", type=int, default=None, help="images 64, texts 32")
    p.add_argument("--lr", type=float, default=None, help="images: head lr (1e-3); texts: encoder lr (5e-5)")
    p.add_argument("--backbone-lr-ratio", type=float, default=0.1, help="images: encoder lr as a fraction of --lr")
    p.add_argument("--input-size", type=int, default=None, help="images: side fed to the encoder (default: its file's)")
    p.add_argument("--seed", type=int, default=0, help="label draw, split, head, views, initialisation")
    p.add_argument("--out", default=None, help="the run folder (default OUT_DIR/NAME)")
    p.add_argument("--out-dir", default="runs", help="parent folder of the run (default runs)")
    p.add_argument("--name", default="finetune", help="run folder name (default finetune)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder of that name")
    p.set_defaults(func=_finetune)
    p = sub.add_parser("predict", help="classify images or texts with a classifier from contrastkit finetune")
    p.add_argument("classifier", metavar="CLASSIFIER", help="a finetune run folder or its classifier.safetensors")
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="images: files and folders (recursive); texts: .txt / .jsonl / .csv"
    )
    p.add_argument("--out", required=True, help="output CSV: input, class, probability, one p_<class> per class")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output of the same name")
    p.add_argument("--text-field", default="text", help="texts: the field holding the text (default text)")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(func=_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``contrastkit`` command; errors in configs and inputs print one clear line and exit with 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (`contrastkit recipes | head -3`): nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # and no second error at exit's flush
        return 0
    except (FileNotFoundError, ValueError) as e:  # ValueError includes ConfigError
        print(f"contrastkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only folder, a lost mount: what failed, where, and no traceback
        if args.debug:
            raise
        where = f" ({e.filename})" if e.filename else ""
        print(f"contrastkit {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except Exception as e:
        if args.debug:
            raise
        if isinstance(e, ModuleNotFoundError) and missing_extra(e):  # an optional package: the extra that brings it
            print(f"contrastkit {args.command}: error: {missing_extra(e)}", file=sys.stderr)
            return 1
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(
            f"contrastkit {args.command}: error: {type(e).__name__}: {first} (run `contrastkit --debug "
            f"{args.command} ...` for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
