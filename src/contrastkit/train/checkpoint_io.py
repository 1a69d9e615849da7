"""Checkpoint files written atomically and read without unpickling code."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that never leaves a half-written file and loads with ``weights_only=True``.

    A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over the target
    (``os.replace`` is atomic on POSIX and Windows): a crash mid-write leaves the previous checkpoint intact.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options, got {storage_options!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as e:
            Path(tmp).unlink(missing_ok=True)
            if _out_of_space(e):
                raise _disk_full(path, checkpoint) from None
            raise

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
        try:
            return torch.load(path, map_location=map_location or "cpu", weights_only=True)
        except Exception as e:
            raise ValueError(
                f"{path}: not a contrastkit checkpoint that loads safely (weights_only=True): {e}".splitlines()[0]
            ) from None


def _out_of_space(error: BaseException) -> bool:
    """A write that failed for want of space (torch.save may report it as a RuntimeError)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(error, RuntimeError) and "No space left" in str(error)


def _disk_full(path: Path, checkpoint: dict[str, Any]) -> OSError:
    """One clear error for a full disk: the file, the space a checkpoint needs and has, what is still there."""
    if path.is_file():
        needed = path.stat().st_size  # the previous checkpoint of this run: the same size
    else:  # weights and, roughly, two optimiser moments
        tensors = checkpoint.get("state_dict", {}).values()
        needed = 3 * sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))
    free = shutil.disk_usage(path.parent).free
    kept = f"the previous {path.name} is untouched and loadable" if path.is_file() else f"no {path.name} was written"
    message = (
        f"no space left to write a checkpoint (about {needed / 2**20:.1f} MiB needed, {free / 2**20:.1f} MiB free); "
        f"{kept}: free space, then continue with resume=last"
    )
    return OSError(errno.ENOSPC, message, str(path))
