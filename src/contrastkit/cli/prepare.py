"""``contrastkit prepare``: an image folder as WebDataset shards at the training size, read by ``data.path``."""

from __future__ import annotations

import argparse
import sys

from contrastkit.outputs.output_target import OutputTarget


def add_prepare_command(sub) -> None:
    """The ``prepare`` sub-command's arguments."""
    p = sub.add_parser(
        "prepare", help="write an image folder as tar shards of images at the training size (faster epochs)"
    )
    p.add_argument("source", metavar="FOLDER", help="a folder of images (class sub-folders give the labels)")
    p.add_argument("--out", required=True, help="output folder of shard-NNNNNN.tar files (train with data.path=OUT)")
    p.add_argument(
        "--image-size", type=int, default=256, help="side of the stored images (the recipe's data.image_size)"
    )
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the stored images (default 95)")
    p.add_argument("--shard-size", type=int, default=1000, help="images per shard (default 1000)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: the machine's cores)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier prepare output in that folder")
    p.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    """`contrastkit prepare`: settings checked and the output refused before any image is read."""
    from contrastkit.data.prepare_shards import SUMMARY, PrepareSettings, default_workers, prepare_shards

    workers = default_workers() if args.workers is None else args.workers
    settings = PrepareSettings(args.image_size, args.quality, args.shard_size, workers)
    settings.check()
    target = OutputTarget(args.out, [args.source], args.overwrite, folder=True, markers=[SUMMARY])
    with target.staged() as folder:
        result = prepare_shards(args.source, folder, settings)
    classes = f", {len(result.classes)} classes" if result.classes else ""
    print(
        f"wrote {result.images} images{classes} at {settings.image_size} px into {len(result.shards)} shards in "
        f"{target.path} ({result.seconds:.0f} s)\ntrain on them: contrastkit train RECIPE data.path={target.path}"
    )
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable images:", file=sys.stderr)
        for item in result.skipped[:10]:
            print(f"  {item['path']}: {item['reason']}", file=sys.stderr)
        if len(result.skipped) > 10:
            print(f"  ... and {len(result.skipped) - 10} more (all in prepare.json)", file=sys.stderr)
    return 0
