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
        earlier = json.loads(path.read_text(encoding="utf-8"))
        if earlier != job:
            changed = ", ".join(f"{k}: {earlier.get(k)!r} -> {v!r}" for k, v in job.items() if earlier.get(k) != v)
            raise ValueError(
                f"{out} holds the shards of another embedding job ({changed}); write to another --out, or remove "
                "the folder to start over"
            )
        return
    tmp = out / f".{JOB}.{os.getpid()}"
    tmp.write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")
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
        infos.append(json.loads(info_path.read_text(encoding="utf-8")))
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
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST)
    return True


class Embeddings:
    """The output of ``contrastkit embed``, one folder (``embeddings.npy`` + ``ids.txt`` + ``embed.json``) or a
    sharded one (``manifest.json`` + ``shard-NNNNN/``), read the same way: ``ids``, ``dim``, ``encoder_path``, and
    the vectors in row order, chunk by chunk, or by row (:meth:`take`). Nothing is held in memory but the chunk
    asked for: the vectors are read from the files (not memory-mapped, so a process's resident memory is only what
    it uses), and the ids are read only when asked for (10M ids are ~0.7 GB of Python strings)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        manifest = self.folder / MANIFEST
        if manifest.is_file():
            info = json.loads(manifest.read_text(encoding="utf-8"))
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
        self.info = info or json.loads((self.folder / "embed.json").read_text(encoding="utf-8"))
        self._layout = [_npy_layout(part / "embeddings.npy") for part in parts]  # (data offset, rows, dim, dtype)
        self.rows_per_part = [rows for _, rows, _, _ in self._layout]
        for part, rows in zip(parts, self.rows_per_part, strict=True):
            lines = _count_lines(part / "ids.txt")
            if lines != rows:
                raise ValueError(f"{part}: ids.txt has {lines} lines but embeddings.npy has {rows} rows")
        self.offsets = np.cumsum([0, *self.rows_per_part])  # (parts + 1,) first global row of each part
        self.dim = int(self.info["dim"])
        self.encoder_path = self.info.get("encoder_path")
        self._ids: list[str] | None = None

    @property
    def ids(self) -> list[str]:
        """The id of every row, in row order (read on first use)."""
        if self._ids is None:
            self._ids = [
                line for part in self.parts for line in (part / "ids.txt").read_text(encoding="utf-8").splitlines()
            ]
        return self._ids

    def write_ids(self, path: str | os.PathLike) -> None:
        """All ids, one per line, copied file by file into ``path`` (never all in memory)."""
        with open(path, "wb") as out:
            for part in self.parts:
                with open(part / "ids.txt", "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
                    if f.tell():  # each part's last id ends its line
                        f.seek(-1, os.SEEK_END)
                        if f.read(1) != b"\n":
                            out.write(b"\n")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def chunks(self, size: int = 65536) -> Iterator[np.ndarray]:
        """The vectors in row order, ``(<= size, D)`` float32 arrays."""
        for part, (offset, rows, dim, dtype) in zip(self.parts, self._layout, strict=True):
            with open(part / "embeddings.npy", "rb") as f:
                f.seek(offset)
                for start in range(0, rows, size):
                    count = min(size, rows - start)
                    chunk = np.fromfile(f, dtype=dtype, count=count * dim).reshape(count, dim)  # (c, D)
                    yield chunk.astype(np.float32, copy=False)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of the given rows (any order, repeats allowed), ``(len(rows), D)`` float32: one read per
        row, only those bytes."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"{self.folder}: rows must be in [0, {len(self)}), got {rows.min()}..{rows.max()}")
        part = np.searchsorted(self.offsets, rows, side="right") - 1  # (R,) which file holds each row
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for p in np.unique(part):
            offset, _, dim, dtype = self._layout[p]
            width = dim * dtype.itemsize
            fd = os.open(self.parts[p] / "embeddings.npy", os.O_RDONLY)
            try:
                for i in np.flatnonzero(part == p):
                    raw = os.pread(fd, width, offset + int(rows[i] - self.offsets[p]) * width)
                    out[i] = np.frombuffer(raw, dtype=dtype)
            finally:
                os.close(fd)
        return out

    def array(self) -> np.ndarray:
        """All vectors, ``(N, D)`` float32 (in memory)."""
        return np.concatenate(list(self.chunks())) if len(self) else np.zeros((0, self.dim), np.float32)


def _npy_layout(path: Path) -> tuple[int, int, int, np.dtype]:
    """``(byte offset of the data, rows, dim, dtype)`` of a 2-D C-order ``.npy`` file, from its header."""
    with open(path, "rb") as f:
        try:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
        except ValueError as e:
            raise ValueError(f"{path}: not a .npy array ({e})") from None
        if len(shape) != 2 or fortran:
            raise ValueError(f"{path}: expected a 2-D (rows, dim) C-order array, got shape {shape}")
        return f.tell(), int(shape[0]), int(shape[1]), np.dtype(dtype)


def _count_lines(path: Path) -> int:
    """Lines of a text file (a last line without a newline counts), read in 1 MiB blocks."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")
