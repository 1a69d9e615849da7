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
            if out_of_space(e, path.parent, _needed(path, checkpoint)):
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


# what a full disk reads as: errno 28 in words (Python, Rust's safetensors, torch's C++ writer) ...
NO_SPACE_WORDING = ("No space left", "os error 28", "Errno 28", "Disk quota exceeded", "os error 122")
# ... and what torch's zip writer reports when a write came up short, whatever the cause (a full disk among others)
SHORT_WRITE_WORDING = ("unexpected pos", "file write failed", "failed writing file")


def _chain(error: BaseException) -> list[BaseException]:
    """The error and the ones it was raised from or while handling (torch's writer raises a RuntimeError while
    handling Python's OSError of the failed write)."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def out_of_space(error: BaseException, folder: Path, needed: int) -> bool:
    """Whether a write into ``folder`` of about ``needed`` bytes failed for want of space: an ENOSPC / EDQUOT
    OSError (or its wording) anywhere in the chain, or a short write of torch's writer ("unexpected pos", "file write
    failed") while the folder's file system really has less than ``needed`` bytes free (any other RuntimeError, or a
    short write with space to spare, is not relabelled)."""
    chain = _chain(error)
    for e in chain:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(words in str(e) for words in NO_SPACE_WORDING):
            return True
    if not any(words in str(e) for e in chain for words in SHORT_WRITE_WORDING):
        return False
    try:
        return shutil.disk_usage(folder).free < needed
    except OSError:
        return False


def tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in a nested checkpoint (weights, optimiser moments, buffers): about its size on disk."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def _needed(path: Path, checkpoint: dict[str, Any]) -> int:
    """The space a checkpoint needs: the previous one of this run (the same size), else its tensors' bytes."""
    return path.stat().st_size if path.is_file() else tensor_bytes(checkpoint)


def no_space_error(path: Path, needed: int | None, what: str, kept: str, then: str) -> OSError:
    """One clear error for a full disk: what could not be written, the space it needs (None: unknown) and has, what
    is still there and what to do."""
    free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0
    space = f"about {needed / 2**20:.1f} MiB needed, " if needed is not None else ""
    message = f"no space left to write {what} ({space}{free / 2**20:.1f} MiB free); {kept}: free space, then {then}"
    return OSError(errno.ENOSPC, message, str(path))


def _disk_full(path: Path, checkpoint: dict[str, Any]) -> OSError:
    kept = f"the previous {path.name} is untouched and loadable" if path.is_file() else f"no {path.name} was written"
    return no_space_error(path, _needed(path, checkpoint), "a checkpoint", kept, "continue with resume=last")
