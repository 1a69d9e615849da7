"""One rule for every command that writes (export, embed, index build, predict, finetune, mine-negatives, report,
import-encoder): checked before any work starts, and applied when the work is complete.

- An existing output is refused unless ``overwrite`` (``--overwrite``) is given; a folder that holds anything but
  this command's own output is never replaced, ``--overwrite`` or not.
- An output is never one of the command's inputs (nor, for a folder, a folder holding an input).
- The output is written under a temporary name beside it (``.NAME.partial-PID``) and renamed into place only when
  complete: a command killed at any moment leaves the earlier output whole, or nothing. What a killed command left
  is removed by the next one that writes there.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL = ".partial-"  # staging folder: .NAME.partial-PID
OLD = ".old-"  # a replaced folder, between the two renames: .NAME.old-PID


class OutputTarget:
    """Where one command writes: a file with its companion files, or a folder.

    Args:
        path: the output (``--out``).
        inputs: the files and folders the command reads; the output may be none of them.
        overwrite: replace an existing output (``--overwrite``).
        companions: for a file output, the names of the files written beside it (``encoder.json`` beside
            ``encoder.safetensors``): they are part of the output (refused, replaced and renamed with it).
        folder: the output is a folder.
        markers: for a folder output, the files that make an existing folder this command's output; a non-empty
            folder holding none of them is never replaced.
        option: how the user named the output, for messages (``--out``).

    Raises:
        ValueError: the output exists and ``overwrite`` is not set, is an input, holds an input, or is a folder
            of something else (each message names the path and what to do instead).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        inputs: Iterable[str | os.PathLike | None] = (),
        overwrite: bool = False,
        companions: Iterable[str] = (),
        folder: bool = False,
        markers: Iterable[str] = (),
        option: str = "--out",
    ) -> None:
        self.path = Path(path).expanduser()
        self.parent = self.path.parent
        self.folder = folder
        self.overwrite = overwrite
        self.option = option
        self.companions = [] if folder else [self.parent / name for name in companions]
        if not self.path.name or self.path.name in (".", ".."):
            raise ValueError(f"{option} {str(path)!r} names no file: give a file or folder name")
        self._refuse_inputs([Path(p).expanduser() for p in inputs if p is not None])
        self._refuse_existing(list(markers))
        self.remove_stale()

    @property
    def files(self) -> list[Path]:
        """The paths this output consists of: the output, then its companions."""
        return [self.path, *self.companions]

    def _refuse_inputs(self, inputs: list[Path]) -> None:
        out = self.path.resolve()
        for source in inputs:
            if not source.exists():
                continue
            source = source.resolve()
            if any(source == f.resolve() for f in self.files):
                raise ValueError(
                    f"{self.option} {self.path} is also this command's input: writing there would destroy it; "
                    f"choose another {self.option}"
                )
            if self.folder and source.is_relative_to(out):
                raise ValueError(
                    f"{self.option} {self.path} holds this command's input {source}: choose another {self.option} "
                    "folder"
                )
            inside = [f for f in self.files if f.exists() and source.is_dir() and f.resolve().is_relative_to(source)]
            if not self.folder and inside:  # an existing file of an input folder may be one of the inputs
                raise ValueError(
                    f"{self.option} {inside[0]} is a file of the input folder {source}: it is not replaced, "
                    f"--overwrite or not; choose an {self.option} outside it (or a new name)"
                )

    def _refuse_existing(self, markers: list[str]) -> None:
        if self.folder:
            if self.path.exists() and not self.path.is_dir():
                raise ValueError(f"{self.option} {self.path} is a file: give a folder name")
            if not self.path.is_dir() or not any(self.path.iterdir()):
                return
            if markers and not any((self.path / m).exists() for m in markers):
                raise ValueError(
                    f"{self.option} {self.path} is a folder of other files (no {' or '.join(markers)}): it is not "
                    f"replaced, --overwrite or not; choose a new or empty {self.option} folder"
                )
            if not self.overwrite:
                raise ValueError(
                    f"{self.option} {self.path} holds an earlier output: pass --overwrite to replace it, or choose "
                    f"another {self.option}"
                )
            return
        if self.path.is_dir():
            raise ValueError(f"{self.option} {self.path} is a folder: give a file name")
        found = [f for f in self.files if f.exists()]
        if found and not self.overwrite:
            raise ValueError(
                f"{self.option} {found[0]} exists already: pass --overwrite to replace it, or choose another "
                f"{self.option}"
            )

    def remove_stale(self) -> None:
        """Remove what a killed command left beside this output (staging folders of processes no longer alive)."""
        if not self.parent.is_dir():
            return
        for leftover in self.parent.glob(f".{glob.escape(self.path.name)}.*-*"):
            kind, _, pid = leftover.name.rpartition("-")
            if not kind.endswith((PARTIAL[:-1], OLD[:-1])) or not pid.isdigit() or _alive(int(pid)):
                continue
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()

    @contextmanager
    def staged(self) -> Iterator[Path]:
        """The path to write to instead of the output (same name, in a staging folder beside it). When the block
        ends normally, what was written there is renamed into place (a replaced earlier output goes only then);
        when it raises, or the process is killed, the earlier output is untouched and the staging folder goes."""
        self.parent.mkdir(parents=True, exist_ok=True)
        staging = self.parent / f".{self.path.name}{PARTIAL}{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            yield staging if self.folder else staging / self.path.name
            self._publish(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _publish(self, staging: Path) -> None:
        if self.folder:
            old = self.parent / f".{self.path.name}{OLD}{os.getpid()}"
            if self.path.exists():
                os.replace(self.path, old)
            os.replace(staging, self.path)
            shutil.rmtree(old, ignore_errors=True)
            return
        written = {p.name for p in staging.iterdir()}
        if self.path.name not in written:
            raise RuntimeError(f"nothing was written to {self.path}")
        for companion in self.companions:  # companions first: the output itself appears last, complete
            if companion.name in written:
                os.replace(staging / companion.name, companion)
            elif companion.exists():  # an earlier output's companion this one does not have
                companion.unlink()
        unexpected = sorted(written - {f.name for f in self.files})
        if unexpected:  # a writer that put more beside its output than declared: nothing is published
            raise RuntimeError(f"{self.path}: undeclared files written beside it: {', '.join(unexpected)}")
        os.replace(staging / self.path.name, self.path)


def _alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine (a staging folder of a live command is left alone)."""
    if pid == os.getpid():
        return False  # this process's own leftover: from an earlier use of the same target
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
