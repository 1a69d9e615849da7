"""Embedding a collection on many processes and machines: fixed shards, one writer each, a manifest at the end.

The inputs are cut into shards of ``shard_size`` consecutive rows; under ``torchrun`` (``RANK`` / ``WORLD_SIZE``)
process ``r`` of ``P`` embeds shards ``r, r + P, ...``. A shard is written into a temporary folder and renamed into
place when complete, so a finished shard is never half-written and a restarted job (any number of processes)
skips it. The process that finds every shard finished writes ``manifest.json``; :class:`Embeddings` then reads the
folder as if it were one ``embeddings.npy`` + ``ids.txt``. No process group is needed: processes share only files
(a shared filesystem across machines), so a lost process costs only its unfinished shard.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
JOB = "job.json"


def process_rank() -> tuple[int, int]:
    """``(rank, world size)`` of this process under torchrun (or SLURM's srun), ``(0, 1)`` otherwise."""
    rank = os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0"))
    world = os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1"))
    return int(rank), int(world)


def shard_ranges(n: int, shard_size: int) -> list[range]:
    """Consecutive row ranges of ``shard_size`` (the last one shorter)."""
    if shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1, got {shard_size}")
    return [range(start, min(start + shard_size, n)) for start in range(0, n, shard_size)]


def _claim_job(out: Path, job: dict[str, Any]) -> None:
    """Record what this folder's shards are of; a folder holding shards of another job is refused (nothing of it
    is touched)."""
    path = out / JOB
    if path.is_file():
        earlier = json.loads(path.read_text())
        if earlier != job:
            changed = ", ".join(f"{k}: {earlier.get(k)!r} -> {v!r}" for k, v in job.items() if earlier.get(k) != v)
            raise ValueError(
                f"{out} holds the shards of another embedding job ({changed}); write to another --out, or remove "
                "the folder to start over"
            )
        return
    tmp = out / f".{JOB}.{os.getpid()}"
    tmp.write_text(json.dumps(job, indent=2) + "\n")
    os.replace(tmp, path)  # two processes racing write the same content


def embed_in_shards(
    embed_rows: Callable[[range, Path], dict[str, Any]],
    n: int,
    out_dir: str | os.PathLike,
    shard_size: int,
    job: dict[str, Any],
    rank: int = 0,
    world_size: int = 1,
) -> dict[str, Any]:
    """Embed this process's unfinished shards with ``embed_rows(rows, folder)`` (which writes ``embeddings.npy``,
    ``ids.txt`` and ``embed.json`` of those rows into ``folder``), then write the manifest if every shard is done.

    Returns:
        ``{"shards", "mine", "embedded", "skipped", "complete"}``: shard counts of the job and of this process.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of {world_size} processes")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shards = shard_ranges(n, shard_size)
    _claim_job(out, {**job, "inputs": n, "shard_size": shard_size})
    mine = list(range(rank, len(shards), world_size))
    embedded = skipped = 0
    for i in mine:
        final = out / f"shard-{i:05d}"
        if (final / "embed.json").is_file():  # finished by an earlier attempt
            skipped += 1
            continue
        partial = out / f".shard-{i:05d}.partial"
        shutil.rmtree(partial, ignore_errors=True)  # what a killed attempt left
        embed_rows(shards[i], partial)
        os.replace(partial, final)
        embedded += 1
    complete = write_manifest(out, len(shards))
    return {"shards": len(shards), "mine": len(mine), "embedded": embedded, "skipped": skipped, "complete": complete}


def write_manifest(out: Path, count: int) -> bool:
    """``manifest.json`` listing the ``count`` shards in order, once all of them are finished; False before."""
    infos = []
    for i in range(count):
        info_path = out / f"shard-{i:05d}" / "embed.json"
        if not info_path.is_file():
            return False
        infos.append(json.loads(info_path.read_text()))
    first = infos[0]
    manifest = {
        "format": "contrastkit-embedding-shards",
        "rows": sum(info["rows"] for info in infos),
        "dim": first["dim"],
        "dtype": first["dtype"],
        "encoder_path": first.get("encoder_path"),
        "encoder": first.get("encoder"),
        "shards": [{"path": f"shard-{i:05d}", "rows": info["rows"]} for i, info in enumerate(infos)],
        "skipped": [s for info in infos for s in info.get("skipped", [])],
    }
    tmp = out / f".{MANIFEST}.{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, out / MANIFEST)
    return True


class Embeddings:
    """The output of ``contrastkit embed``, one folder (``embeddings.npy`` + ``ids.txt`` + ``embed.json``) or a
    sharded one (``manifest.json`` + ``shard-NNNNN/``), read the same way: ``ids``, ``dim``, ``encoder_path``, and
    the vectors in row order, chunk by chunk (memory-mapped, never all loaded)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        manifest = self.folder / MANIFEST
        if manifest.is_file():
            info = json.loads(manifest.read_text())
            parts = [self.folder / s["path"] for s in info["shards"]]
        elif (self.folder / "embeddings.npy").is_file():
            info = None
            parts = [self.folder]
        elif (self.folder / JOB).is_file():
            raise ValueError(
                f"{self.folder}: a sharded embedding job that has not finished (no {MANIFEST} yet): run the same "
                "contrastkit embed command again to finish its shards"
            )
        else:
            raise FileNotFoundError(
                f"{self.folder / 'embeddings.npy'} does not exist: build an index from `contrastkit embed` output"
            )
        self.parts = parts
        for part in parts:
            for name in ("embeddings.npy", "ids.txt", "embed.json"):
                if not (part / name).is_file():
                    raise FileNotFoundError(f"{part / name} does not exist: the embedding output is incomplete")
        self.info = info or json.loads((self.folder / "embed.json").read_text())
        self.ids: list[str] = []
        self.rows_per_part = []
        for part in parts:
            ids = (part / "ids.txt").read_text().splitlines()
            rows = np.load(part / "embeddings.npy", mmap_mode="r").shape[0]
            if len(ids) != rows:
                raise ValueError(f"{part}: ids.txt has {len(ids)} lines but embeddings.npy has {rows} rows")
            self.ids += ids
            self.rows_per_part.append(rows)
        self.dim = int(self.info["dim"])
        self.encoder_path = self.info.get("encoder_path")

    def __len__(self) -> int:
        return len(self.ids)

    def chunks(self, size: int = 65536) -> Iterator[np.ndarray]:
        """The vectors in row order, ``(<= size, D)`` float32 arrays."""
        for part in self.parts:
            vectors = np.load(part / "embeddings.npy", mmap_mode="r")
            for start in range(0, len(vectors), size):
                yield np.asarray(vectors[start : start + size], dtype=np.float32)

    def array(self) -> np.ndarray:
        """All vectors, ``(N, D)`` float32 (in memory)."""
        return np.concatenate(list(self.chunks())) if len(self) else np.zeros((0, self.dim), np.float32)
