"""``contrastkit embed``: images or texts to embeddings, in one folder or in resumable shards across processes."""

from __future__ import annotations

import argparse
import os

DEFAULT_SHARD_SIZE = 50_000  # inputs per shard of a sharded (multi-process) embed


def run_embed(args: argparse.Namespace) -> int:
    """`contrastkit embed`: one folder, or shards (``--shard-size`` or under torchrun) with a manifest."""
    import contrastkit
    from contrastkit.backbones.encoder import ImageEncoder, SequenceEncoder
    from contrastkit.index.embedding_shards import process_rank

    rank, world = process_rank()
    if args.shard_size is not None and args.shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1, got {args.shard_size}")
    encoder = contrastkit.load_encoder(args.encoder)
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
        from contrastkit.data import load_dataset
        from contrastkit.index.embed import embed_dataset

        items = load_dataset(args.data, split=args.split)

        def embed_rows(rows: range, out) -> dict:
            return embed_dataset(
                encoder, items, out, args.batch_size, args.num_workers, args.float16, not args.quiet, rows
            )

        what = "embeddings"
    if args.shard_size is None and world == 1:  # one process, one folder
        summary = embed_rows(range(len(items)), args.out)
        skipped = ""
        if summary["skipped"]:
            skipped = f", {len(summary['skipped'])} unreadable images skipped (listed in embed.json)"
        ids = "texts in ids.txt" if texts else "row ids in ids.txt"
        print(
            f"wrote {summary['rows']} x {summary['dim']} {summary['dtype']} {what} to {args.out}/embeddings.npy "
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
