"""The search sub-commands: ``contrastkit mine-negatives``, ``index build``, ``search`` and ``serve``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _mine_negatives(args: argparse.Namespace) -> int:
    from contrastkit.index.mine_negatives import mine_negatives, stats_path
    from contrastkit.outputs.output_target import OutputTarget

    try:
        start, stop = (int(x) for x in args.range.split(":"))
    except ValueError:
        raise ValueError(f"--range must be START:STOP (ranks, e.g. 10:50), got {args.range!r}") from None
    target = OutputTarget(  # refused before anything is read
        args.out, [args.pairs, args.encoder], args.overwrite, companions=[stats_path(args.out).name]
    )
    margin = None if args.relative_margin <= 0 else args.relative_margin
    with target.staged() as out:
        summary = mine_negatives(
            args.pairs, args.encoder, out, args.num_negatives, (start, stop), args.max_score, margin, args.batch_size
        )
    print(f"wrote {target.path}: {summary.text()}")
    return 0


def _index_build(args: argparse.Namespace) -> int:
    from contrastkit.index.embedding_index import EmbeddingIndex
    from contrastkit.index.search import build_index
    from contrastkit.index.sized_index import parse_memory
    from contrastkit.outputs.output_target import OutputTarget

    if args.max_query_ms is not None and not args.max_query_ms > 0:
        raise ValueError(f"--max-query-ms must be > 0, got {args.max_query_ms}")
    memory = parse_memory(args.max_memory) if args.max_memory is not None else None
    if args.rerank < 0:
        raise ValueError(f"--rerank must be >= 0, got {args.rerank}")
    if args.kind is not None and memory is not None:
        raise ValueError("give either --kind or --max-memory (which chooses the kind), not both")
    name = Path(args.out).name  # the index and its three side files
    sides = [name + suffix for suffix in (".json", ".ids.txt", ".source.json")]
    target = OutputTarget(args.out, [args.embeddings], args.overwrite, companions=sides)  # before anything is read
    with target.staged() as staged:
        build_index(args.embeddings, staged, args.kind, memory, args.max_query_ms, args.rerank)
    path = target.path
    index = EmbeddingIndex.load(path)
    quality = index.quality
    measured = ""
    if quality:
        measured = f"; recall@10 {quality['recall_at_10']:.3f} vs exact, {quality['ms_per_query']:.2f} ms/query"
        if "recall_at_10_codes_only" in quality:
            measured += f" (re-ranked from the vectors on disk; codes only: {quality['recall_at_10_codes_only']:.3f})"
        if "plan" in quality:
            measured += f" ({quality['plan']['reason']})"
    print(f"wrote {index.kind} index {path} of {len(index)} vectors (+ .json, .ids.txt, .source.json){measured}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from contrastkit.index.search import search_image, search_text

    if args.k < 1:
        raise ValueError(f"-k must be >= 1, got {args.k}")
    if args.text is not None:  # k is clamped to the index size: -k 1000000000 prints every row, no more
        results = search_text(args.index, args.text, args.k, args.encoder)
    else:
        results = search_image(args.index, args.image, args.k, args.encoder)
    for rank, (score, row_id) in enumerate(results, start=1):
        print(f"{rank:>3}  {score:.4f}  {row_id}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import os

    from contrastkit.index.search_service import serve

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    if not args.rate_limit >= 0:
        raise ValueError(f"--rate-limit must be >= 0 requests per second (0: no limit), got {args.rate_limit}")
    if args.max_batch < 1:
        raise ValueError(f"--max-batch must be >= 1 (1: no batching), got {args.max_batch}")
    token = args.token if args.token is not None else os.environ.get("CONTRASTKIT_SERVE_TOKEN") or None
    serve(args.index, args.encoder, args.host, args.port, args.image_root, token, args.rate_limit, args.max_batch)
    return 0


def add_search_commands(sub: argparse._SubParsersAction) -> None:
    """Register mine-negatives, index build, search and serve on the ``contrastkit`` parser's sub-commands."""
    p = sub.add_parser("index", help="similarity-search indexes over embeddings")
    index_sub = p.add_subparsers(dest="index_command", required=True, metavar="INDEX_COMMAND")
    b = index_sub.add_parser("build", help="index the output folder of contrastkit embed")
    b.add_argument("embeddings", metavar="EMBEDDINGS_DIR", help="a folder written by contrastkit embed")
    b.add_argument("--out", required=True, help="index file, e.g. gallery.faiss")
    b.add_argument("--kind", choices=("exact", "ivf", "hnsw", "ivfpq"), default=None,
                   help="exact (default), ivf, hnsw or ivfpq (OPQ + IVF-PQ: compressed codes)")  # fmt: skip
    b.add_argument("--max-memory", default=None, help="memory budget (e.g. 2GB): the index kind is chosen to fit it")
    b.add_argument("--max-query-ms", type=float, default=None, help="tune the search effort to answer within this")
    b.add_argument(
        "--rerank",
        type=int,
        default=10,
        help="a compressed (ivfpq) index orders k x this many "
        "candidates by the exact vectors, read from EMBEDDINGS on disk at search time (0: codes only)",
    )
    b.add_argument("--overwrite", action="store_true", help="replace an existing index of that name (and its files)")
    b.set_defaults(func=_index_build)
    p = sub.add_parser("mine-negatives", help="hard negatives for text pairs, probable false negatives filtered out")
    p.add_argument("pairs", metavar="PAIRS", help="a pairs file (.jsonl / .csv / .tsv: anchor, positive)")
    p.add_argument("--encoder", required=True, help="an encoder file that embeds text (text-pairs or clip run)")
    p.add_argument("--out", required=True, help="output .jsonl: anchor, positive, negative (one row per negative)")
    p.add_argument("--num-negatives", type=int, default=1, help="negatives per anchor (default 1)")
    p.add_argument("--range", default="10:50", help="rank window START:STOP the negatives come from (default 10:50)")
    p.add_argument("--max-score", type=float, default=None, help="skip candidates more similar than this")
    margin_help = "skip candidates more similar than this x the positive's similarity (0: off; default 0.95)"
    p.add_argument("--relative-margin", type=float, default=0.95, help=margin_help)
    p.add_argument("--batch-size", type=int, default=128, help="texts embedded at a time")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output of that name")
    p.set_defaults(func=_mine_negatives)
    p = sub.add_parser("search", help="the most similar items of an index to an image or a text")
    p.add_argument("index", metavar="INDEX", help="an index from contrastkit index build")
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--image", help="a query image file")
    query.add_argument("--text", help="a query text (needs a text encoder)")
    p.add_argument("-k", type=int, default=10, help="results to print")
    p.add_argument("--encoder", default=None, help="encoder to embed the query (default: the one the index came from)")
    p.set_defaults(func=_search)
    p = sub.add_parser("serve", help="an index as an HTTP search service with a web page (FastAPI + uvicorn)")
    p.add_argument("index", metavar="INDEX", help="an index from contrastkit index build")
    p.add_argument("--encoder", default=None, help="encoder to embed queries (default: the one the index came from)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    root_help = "folder whose image files may be shown as thumbnails (default: the common folder of image-path ids)"
    p.add_argument("--image-root", default=None, help=root_help)
    token_help = (
        "require Authorization: Bearer TOKEN on every request but the page's (default: the environment "
        "variable CONTRASTKIT_SERVE_TOKEN, which other users cannot read from the process list; none: open)"
    )
    p.add_argument("--token", default=None, help=token_help)
    rate_help = "requests per second per client address, bursts of twice that (default 0: no limit)"
    p.add_argument("--rate-limit", type=float, default=0.0, help=rate_help)
    batch_help = "most concurrent queries embedded by one encoder call (default 16; 1: one at a time)"
    p.add_argument("--max-batch", type=int, default=16, help=batch_help)  # search_service.MAX_BATCH (a test checks)
    p.set_defaults(func=_serve)
