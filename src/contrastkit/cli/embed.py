"""``contrastkit embed``: images or texts to embeddings, in one folder or in resumable shards across processes."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from contrastkit.outputs.output_target import OutputTarget

DEFAULT_SHARD_SIZE = 50_000  # inputs per shard of a sharded (multi-process) embed
ONE_FOLDER = ("embeddings.npy", "ids.txt", "embed.json")  # what an unsharded embed writes
MARKERS = ("embed.json", "embeddings.npy", "manifest.json", "job.json")  # a folder holding any: an embed output


def run_embed(args: argparse.Namespace) -> int:
    """`contrastkit embed`: one folder, or shards (``--shard-size`` or under torchrun) with a manifest."""
    from contrastkit.backbones.encoder import ImageEncoder, SequenceEncoder
    from contrastkit.backbones.encoder_file import load_encoder
    from contrastkit.index.embedding_shards import process_rank

    rank, world = process_rank()
    if args.shard_size is not None and args.shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1, got {args.shard_size}")
    sharded = args.shard_size is not None or world > 1
    target = _shard_folder(args, world) if sharded else _one_folder(args)  # refused before anything is read
    encoder = load_encoder(args.encoder)
    if isinstance(encoder, SequenceEncoder):
        raise ValueError(
            f"{args.encoder}: a sequence encoder (from a CPC run); embed reads images and texts: in Python, "
            "contrastkit.load_encoder(ENCODER).encode_sequence(signals) embeds (N, C, L) signals"
        )
    import torch

    if world > 1 and torch.cuda.is_available():  # one GPU per process under torchrun
        encoder = encoder.to(f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}")
    texts = not isinstance(encoder, ImageEncoder) or args.data.endswith((".txt", ".jsonl", ".ndjson"))
    if texts:
        from contrastkit.index.embed import embed_texts, read_texts

        items = read_texts(args.data)

        def embed_rows(rows: range, out) -> dict:
            return embed_texts(encoder, items[rows.start : rows.stop], out, args.batch_size, float16=args.float16)

        what = "text embeddings"
    else:
        from contrastkit.data import ImageFolderDataset, ImageTextDataset, WebDatasetShards, load_dataset
        from contrastkit.index.embed import embed_dataset

        items = load_dataset(args.data, split=args.split)
        if isinstance(items, ImageFolderDataset | ImageTextDataset | WebDatasetShards):  # a JPEG 4x the encoder's
            items.min_side = int(encoder.encoder_info["input_size"])  # input decodes at a reduced scale

        def embed_rows(rows: range, out) -> dict:
            return embed_dataset(
                encoder, items, out, args.batch_size, args.num_workers, args.float16, not args.quiet, rows
            )

        what = "embeddings"
    if not sharded:  # one process, one folder: written beside it, renamed into place when complete
        with target.staged() as folder:
            summary = embed_rows(range(len(items)), folder)
            if summary["rows"] == 0:
                raise ValueError(_nothing_readable(args.data, summary))
        skipped = ""
        if summary["skipped"]:
            skipped = f", {len(summary['skipped'])} unreadable images skipped (listed in embed.json)"
        ids = "texts in ids.txt" if texts else "row ids in ids.txt"
        print(
            f"wrote {summary['rows']} x {summary['dim']} {summary['dtype']} {what} to {target.path}/embeddings.npy "
            f"({ids}){skipped}"
        )
        return 0
    from contrastkit.index.embedding_shards import embed_in_shards

    job = {"encoder": str(os.path.abspath(args.encoder)), "data": args.data, "split": args.split,
           "float16": bool(args.float16)}  # fmt: skip
    done = embed_in_shards(embed_rows, len(items), args.out, args.shard_size or DEFAULT_SHARD_SIZE, job, rank, world)
    state = (
        f"all {done['shards']} shards finished: {args.out}/manifest.json"
        if done["complete"]
        else "other processes' shards still running (the last to finish writes manifest.json)"
    )
    print(
        f"process {rank}/{world}: embedded {done['embedded']} of its {done['mine']} shards, skipped "
        f"{done['skipped']} finished earlier; {state}"
    )
    return 0


def _one_folder(args: argparse.Namespace) -> OutputTarget:
    """An unsharded embed's folder: refused if it holds an earlier output (a sharded one included) unless
    ``--overwrite``, if it holds other files, or if it is (or holds) the encoder or the data."""
    return OutputTarget(args.out, [args.encoder, args.data], args.overwrite, folder=True, markers=MARKERS)


def _shard_folder(args: argparse.Namespace, world: int) -> OutputTarget:
    """A sharded embed's folder: a folder of the same job's shards is continued (its finished shards skipped); an
    unsharded output there is replaced only with ``--overwrite`` (in one process), and anything else is refused."""
    out = Path(args.out)
    if (out / "job.json").is_file():  # an earlier attempt of a sharded job: continued, or refused if another job
        if args.overwrite:
            raise ValueError(
                f"--out {out} holds the shards of an embedding job: run the same command without --overwrite to "
                "finish it, or remove the folder to start over"
            )
        return OutputTarget(out, [args.encoder, args.data], True, folder=True, markers=MARKERS)
    if args.overwrite and world > 1:
        raise ValueError("--overwrite is for one process: under torchrun remove the earlier --out folder first")
    target = OutputTarget(out, [args.encoder, args.data], args.overwrite, folder=True, markers=MARKERS)
    for name in ONE_FOLDER:  # --overwrite of an unsharded output: its files go, the shards take the folder
        if (out / name).exists():
            (out / name).unlink()
    return target


def _nothing_readable(data: str, summary: dict) -> str:
    """The one line for a data set none of whose inputs could be embedded."""
    skipped = summary.get("skipped") or []
    first = f" (first: {skipped[0]['path']}: {skipped[0]['reason']})" if skipped else ""
    return f"{data}: none of its {len(skipped)} images could be read{first}; nothing was written"
