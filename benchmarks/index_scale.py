"""An index larger than memory: ``contrastkit index build --max-memory 2GB`` on 10M x 128 synthetic clustered vectors.

The vectors (5.1 GB as float32) are written as a sharded embedding folder (what ``contrastkit embed`` writes under
torchrun: ``shard-NNNNN/`` + ``manifest.json``), 500,000 per shard, then indexed by the command line in its own
process. Printed: the chosen index and why, build time, the build process's peak resident memory (``ru_maxrss``),
recall@10 against exact search on 1,000 held-out queries and milliseconds per query, as recorded in the index.

    python benchmarks/index_scale.py                         # 10M vectors, 2GB, 10 ms/query (~20 minutes)
    python benchmarks/index_scale.py --vectors 1000000 --max-memory 1GB
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from contrastkit.index.embedding_shards import write_manifest


def write_collection(folder: Path, n: int, dim: int, per_shard: int = 500_000, seed: int = 0) -> None:
    """``n`` vectors around 10,000 random centres (cluster spread 0.5 of the centres' norm scale), as shards."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((10_000, dim)).astype(np.float32)
    shards = 0
    for start in range(0, n, per_shard):
        m = min(per_shard, n - start)
        part = folder / f"shard-{shards:05d}"
        part.mkdir(parents=True)
        rows = np.lib.format.open_memmap(part / "embeddings.npy", mode="w+", dtype=np.float32, shape=(m, dim))
        for s in range(0, m, 100_000):
            b = min(100_000, m - s)
            noise = 0.5 * rng.standard_normal((b, dim), dtype=np.float32)
            rows[s : s + b] = centres[rng.integers(0, len(centres), b)] + noise
        rows.flush()
        del rows
        (part / "ids.txt").write_text("".join(f"v{i}\n" for i in range(start, start + m)))
        (part / "embed.json").write_text(json.dumps({"rows": m, "dim": dim, "dtype": "float32", "skipped": []}))
        shards += 1
    assert write_manifest(folder, shards)


def watch_memory(process: subprocess.Popen) -> dict[str, int]:
    """Peak ``RssAnon`` / ``RssFile`` (bytes) of a running process, sampled every 50 ms from /proc in a thread."""
    peaks = {"RssAnon": 0, "RssFile": 0}

    def sample() -> None:
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in peaks:
                        peaks[key] = max(peaks[key], int(value.split()[0]) * 1024)
            except OSError:
                break
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=10_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--max-memory", default="2GB")
    parser.add_argument("--max-query-ms", type=float, default=10.0)
    parser.add_argument("--dir", default=None, help="where to write the vectors (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp) / "vectors"
        start = time.perf_counter()
        write_collection(folder, args.vectors, args.dim)
        written = time.perf_counter() - start
        out = Path(tmp) / "index.faiss"
        command = [sys.executable, "-m", "contrastkit", "index", "build", str(folder), "--out", str(out),
                   "--max-memory", args.max_memory, "--max-query-ms", str(args.max_query_ms)]  # fmt: skip
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peaks = watch_memory(process)
        _, stderr = process.communicate()
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            raise SystemExit(f"index build failed: {stderr[-3000:]}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # bytes (Linux reports KiB)
        meta = json.loads(Path(str(out) + ".json").read_text())
        size = out.stat().st_size
    quality, plan = meta["quality"], meta["quality"]["plan"]
    effort = "nprobe" if meta["kind"].startswith("ivf") else "efSearch"
    print(f"{args.vectors:,} x {args.dim} clustered float32 vectors ({args.vectors * args.dim * 4 / 2**30:.1f} GiB, "
          f"written in {written:.0f} s); contrastkit index build --max-memory {args.max_memory} --max-query-ms "
          f"{args.max_query_ms:g}")  # fmt: skip
    codes = f", {plan['pq_m']} bytes/vector" if meta["kind"] == "ivfpq" else ""
    print(f"  chosen: {meta['kind']} (nlist {meta['nlist']}{codes}) - {plan['reason']}")
    print(
        f"  build: {seconds:.0f} s, peak resident memory {peak / 2**30:.2f} GiB (of which at most "
        f"{peaks['RssAnon'] / 2**30:.2f} GiB anonymous: the rest is shared libraries and file pages, which the "
        f"kernel drops under pressure), index file {size / 2**30:.2f} GiB"
    )
    print(
        f"  search: {effort} {quality['effort']}, recall@10 {quality['recall_at_10']:.3f} vs exact "
        f"({quality['queries']} held-out queries), {quality['ms_per_query']:.2f} ms/query (one at a time)"
    )
    if "recall_at_10_codes_only" in quality:
        print(
            f"  (re-ranked: {meta['rerank'] * 10} candidates by their codes, ordered by the exact vectors read from "
            f"disk; by the codes alone: recall@10 {quality['recall_at_10_codes_only']:.3f}, "
            f"{quality['ms_per_query_codes_only']:.2f} ms/query)"
        )
    for t in quality["tried"]:
        print(f"    {effort} {t['effort']:>4}: recall@10 {t['recall_at_10']:.3f}, {t['ms_per_query']:.2f} ms/query")


if __name__ == "__main__":
    main()
