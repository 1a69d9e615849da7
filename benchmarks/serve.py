"""Load test of ``contrastkit serve``: latency percentiles and queries/s at 1, 8 and 32 concurrent clients.

Builds an IVF index of ``--vectors`` synthetic clustered 128-d vectors (default 1,000,000; 1,024 cells, 16 visited per
query), starts ``contrastkit serve`` on it in its own process (uvicorn, one worker, as a user starts it), and sends
``GET /neighbours/{id}?k=10`` requests for random indexed rows from an asyncio client (httpx) for ``--seconds`` per
concurrency level. Every request must succeed (status 200 and k results); the client and the server share this
machine's cores.

    python benchmarks/serve.py                      # 1M vectors, 10 s per level
    python benchmarks/serve.py --vectors 200000 --seconds 5
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
    import httpx

    latencies: list[float] = []
    failures = 0
    stop = time.perf_counter() + seconds
    rng = np.random.default_rng(clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal failures
        while time.perf_counter() < stop:
            row = int(rng.integers(n))
            start = time.perf_counter()
            try:
                response = await http.get(f"{url}/neighbours/row-{row:07d}", params={"k": k})
                ok = response.status_code == 200 and len(response.json()["results"]) == k
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start)
            failures += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        begin = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - begin
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(ms), "failed": failures, "qps": len(ms) / elapsed,
            "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", default="1,8,32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        index = build(Path(tmp), args.vectors, args.dim)
        built = time.perf_counter() - start
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "contrastkit", "serve", str(index), "--port", str(port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            import httpx

            deadline = time.time() + 300
            while True:
                try:
                    health = httpx.get(f"{url}/health", timeout=5).json()
                    break
                except httpx.HTTPError:
                    if server.poll() is not None or time.time() > deadline:
                        raise SystemExit(f"the server did not start: {server.stdout.read()}") from None
                    time.sleep(0.5)
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


if __name__ == "__main__":
    main()
