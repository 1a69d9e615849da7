"""``contrastkit`` command: one sub-command per job, each a small function over the library.

Argument parsing uses the standard library's ``argparse``; configs use OmegaConf (``contrastkit.train.config``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EPILOG = """examples:
  contrastkit recipes
  contrastkit train simclr-fashion-mnist trainer.max_epochs=5
  contrastkit train byol-cifar10 data.path=~/images trainer.devices=2 trainer.precision=bf16-mixed
  contrastkit train my-config.yaml resume=last
  contrastkit export runs/simclr-fashion-mnist/checkpoints/last.ckpt --out encoder.safetensors
  contrastkit embed runs/simclr-fashion-mnist/encoder.safetensors fashion-mnist --split test --out emb/
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
        again = " ".join([args.recipe, *[o for o in args.overrides if not o.startswith("resume=")], "resume=last"])
        print(f"  checkpoint:  {result.checkpoint}  (continue with: contrastkit train {again})")
        print(f"  logs:        {result.run_dir / 'logs' / 'metrics.csv'}")
    return 0


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
    from contrastkit.cli.export import export_checkpoint

    path = export_checkpoint(args.checkpoint, args.out)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    import contrastkit
    from contrastkit.data import load_dataset
    from contrastkit.index.embed import embed_dataset

    encoder = contrastkit.load_encoder(args.encoder)
    dataset = load_dataset(args.data, split=args.split)
    summary = embed_dataset(
        encoder, dataset, args.out, args.batch_size, args.num_workers, float16=args.float16, progress=not args.quiet
    )
    skipped = (
        f", {len(summary['skipped'])} unreadable images skipped (listed in embed.json)" if summary["skipped"] else ""
    )
    print(
        f"wrote {summary['rows']} x {summary['dim']} {summary['dtype']} embeddings to {args.out}/embeddings.npy "
        f"(row ids in ids.txt){skipped}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contrastkit",
        description="Contrastive representation learning: train, export and use encoders.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    p.set_defaults(func=_export)
    p = sub.add_parser("embed", help="embed a data set with an encoder: embeddings.npy + ids.txt, streamed")
    p.add_argument("encoder", metavar="ENCODER", help="an encoder.safetensors from contrastkit train / export")
    p.add_argument("data", metavar="DATA", help="a built-in data set name or a path (folder, listing, ...)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default=None, help="split of a built-in data set (default: train)")
    p.add_argument("--float16", action="store_true", help="store float16 embeddings (half the disk)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_embed)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``contrastkit`` command; errors in configs and inputs print one clear line and exit with 2."""
    from contrastkit.train.config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"contrastkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
