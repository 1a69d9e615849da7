"""Search speed and recall: contrastkit's kNN evaluation vs scikit-learn, and IVF/HNSW recall vs exact search.

Part 1: weighted cosine kNN classification (k=200, T=0.1; the ``knn_accuracy`` convention) of 10,000 queries against
60,000 x 256 clustered embeddings (10 classes): ``contrastkit.eval.knn_scores`` (chunked torch GEMM + running top-k)
vs scikit-learn ``KNeighborsClassifier(algorithm="brute", metric="cosine", weights=exp(cos/T))``, in this process;
the predictions must be identical.

Part 2: ``EmbeddingIndex`` IVF and HNSW on N synthetic vectors (clustered, D=128): build time, queries/s and
recall@10 against the exact index, for 1,000 queries; then recall@10 and query time as IVF's ``nprobe`` and HNSW's
``efSearch`` vary on the same built indexes, drawn to ``benchmarks/figures/search_recall.png`` (``--figure``).

    python benchmarks/search.py                       # 60k bank; 1,000,000 vectors for part 2
    python benchmarks/search.py --n 200000            # a quicker part 2
    python benchmarks/search.py --bank 2000 --queries 500 --n 20000   # a smoke check in seconds
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from contrastkit.eval import knn_scores
from contrastkit.index import EmbeddingIndex


def clustered(n: int, d: int, classes: int, rng: np.random.Generator, spread: float = 2.0):
    centres = rng.normal(size=(classes, d)).astype(np.float32)
    labels = rng.integers(0, classes, n)
    return centres[labels] + spread * rng.normal(size=(n, d)).astype(np.float32), labels


def part1(args) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    x, y = clustered(args.bank + args.queries, 256, 10, rng)
    bank, bank_y, queries = x[: args.bank], y[: args.bank], x[args.bank :]
    start = time.perf_counter()
    ours = knn_scores(bank, bank_y, queries, k=200, temperature=0.1).argmax(1).numpy()
    t_ours = time.perf_counter() - start

    def weights(distances):
        return np.exp((1.0 - distances) / 0.1)

    start = time.perf_counter()
    sk = KNeighborsClassifier(n_neighbors=200, algorithm="brute", metric="cosine", weights=weights)
    theirs = sk.fit(bank, bank_y).predict(queries)
    t_sk = time.perf_counter() - start
    same = float((ours == theirs).mean())
    print(f"## kNN evaluation: {args.queries} queries x {args.bank} x 256, k=200")
    print(f"{'':<34} {'seconds':>8} {'x sklearn':>10}")
    print(f"{'scikit-learn brute cosine':<34} {t_sk:>8.2f} {1.0:>9.2f}x")
    print(f"{'contrastkit knn_scores':<34} {t_ours:>8.2f} {t_sk / t_ours:>9.2f}x")
    print(f"identical predictions: {same * 100:.2f}%")


NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
EF_SEARCHES = (16, 32, 64, 128, 256, 512)


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))


def sweep(index: EmbeddingIndex, queries: np.ndarray, truth: np.ndarray, values, setter) -> list[tuple]:
    """(value, recall@10, ms per query) for each search-time parameter value, on the built ``index``."""
    rows = []
    for value in values:
        setter(index.index, value)
        start = time.perf_counter()
        found = index.search(queries, 10).ids
        ms = (time.perf_counter() - start) * 1000 / len(queries)
        rows.append((value, recall_at_10(found, truth), ms))
    return rows


def recall_figure(curves: dict[str, list[tuple]], exact_ms: float, n: int, data: str, path: Path) -> None:
    """Recall@10 vs the search parameter (left) and vs the time per query it costs (right), exact search marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_param, ax_time = fig.subplots(1, 2)
    for (name, rows), colour in zip(curves.items(), ("tab:blue", "tab:orange"), strict=False):
        values, recalls, ms = (np.array(c) for c in zip(*rows, strict=True))
        ax_param.semilogx(values, recalls, marker="o", color=colour, label=name, base=2)
        ax_time.semilogx(ms, recalls, marker="o", color=colour, label=name)
    ax_time.axvline(exact_ms, color="0.3", linestyle="--", label=f"exact search ({exact_ms:.2f} ms)")
    ax_param.set_xlabel("nprobe (IVF) / efSearch (HNSW)")
    ax_time.set_xlabel("ms per query (batch of 1000 queries, amortised)")
    lowest = min(r for rows in curves.values() for _, r, _ in rows)
    for ax in (ax_param, ax_time):
        ax.set_ylabel("recall@10 vs exact")
        ax.set_ylim(max(0.0, lowest - 0.05), 1.005)
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="lower right", fontsize="small")
    fig.suptitle(f"Approximate search on {n:,} x 128 {data} vectors, 1000 queries")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", facecolor="white")
    print(f"wrote {path}")


def part2(args) -> None:
    rng = np.random.default_rng(1)
    if args.data == "uniform":  # no structure for the index to exploit: the hard case for IVF and HNSW
        gallery = rng.normal(size=(args.n, 128)).astype(np.float32)
        queries = rng.normal(size=(1000, 128)).astype(np.float32)
    else:
        gallery, _ = clustered(args.n, 128, 1000, rng, spread=1.0)
        queries, _ = clustered(1000, 128, 1000, np.random.default_rng(1), spread=1.0)  # same centres
        queries = queries + 0.1 * rng.normal(size=queries.shape).astype(np.float32)
    exact = EmbeddingIndex(128)
    exact.add(gallery)
    start = time.perf_counter()
    truth = exact.search(queries, 10).ids
    t_exact = time.perf_counter() - start
    print(f"\n## Approximate search: {args.n} x 128 {args.data} vectors, 1000 queries, recall@10 vs exact")
    print(f"{'index':<34} {'build s':>8} {'queries/s':>10} {'recall@10':>10}")
    print(f"{'exact (IndexFlatIP)':<34} {'-':>8} {1000 / t_exact:>10.0f} {1.0:>10.3f}")
    nlist = int(4 * np.sqrt(args.n))
    curves: dict[str, list[tuple]] = {}
    for name, index in (
        (f"ivf nlist={nlist} nprobe=32", EmbeddingIndex(128, "ivf", nlist=nlist, nprobe=32)),
        ("hnsw m=32 ef_search=128", EmbeddingIndex(128, "hnsw", m=32, ef_search=128)),
    ):
        start = time.perf_counter()
        index.add(gallery)
        build = time.perf_counter() - start
        start = time.perf_counter()
        found = index.search(queries, 10).ids
        t = time.perf_counter() - start
        recall = recall_at_10(found, truth)
        print(f"{name:<34} {build:>8.1f} {1000 / t:>10.0f} {recall:>10.3f}")
        if args.figure:
            if index.kind == "ivf":
                values = [v for v in NPROBES if v <= nlist]
                curves[f"IVF nlist={nlist}: nprobe"] = sweep(index, queries, truth, values, _set_nprobe)
            else:
                curves["HNSW m=32: efSearch"] = sweep(index, queries, truth, EF_SEARCHES, _set_ef_search)
    if args.figure:
        for name, rows in curves.items():
            print(f"{name}: " + ", ".join(f"{v}: {r:.3f} ({ms:.2f} ms)" for v, r, ms in rows))
        recall_figure(curves, t_exact * 1000 / len(queries), args.n, args.data, Path(args.figure))


def _set_nprobe(index, value: int) -> None:
    index.nprobe = value


def _set_ef_search(index, value: int) -> None:
    index.hnsw.efSearch = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bank", type=int, default=60000)
    parser.add_argument("--queries", type=int, default=10000)
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors for the IVF/HNSW recall part")
    parser.add_argument("--skip-ann", action="store_true", help="only the kNN evaluation part")
    parser.add_argument("--skip-knn", action="store_true", help="only the IVF/HNSW part")
    parser.add_argument("--data", choices=("clustered", "uniform"), default="clustered", help="part 2's vectors")
    parser.add_argument("--figure", default=None, help="recall-vs-parameter figure ('' for none; default "
                        "benchmarks/figures/search_recall[_uniform].png)")  # fmt: skip
    args = parser.parse_args()
    if args.figure is None:
        suffix = "" if args.data == "clustered" else f"_{args.data}"
        args.figure = str(Path(__file__).parent / "figures" / f"search_recall{suffix}.png")
    print(f"# {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.machine()}")
    if not args.skip_knn:
        part1(args)
    if not args.skip_ann:
        part2(args)


if __name__ == "__main__":
    main()
