"""A run's CSV logs (``logs/metrics.csv`` plus ``logs/resume-N/metrics.csv``) merged into one series per key."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Series:
    """One logged key over training: parallel lists, in logging order."""

    steps: list[int] = field(default_factory=list)  # the optimiser step of each value
    epochs: list[int] = field(default_factory=list)  # the epoch of each value (-1 when not logged)
    values: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class RunLogs:
    """Every key of a run's CSV logs, its segments merged.

    Attributes:
        series: key (e.g. ``train/loss``, ``knn/top1``) -> its :class:`Series`.
        files: the CSV files read, in order.
        problems: why some logs are missing or were skipped, for people (empty when all is well).
    """

    series: dict[str, Series] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def get(self, key: str) -> Series | None:
        """The series of ``key``, or None when it was never logged."""
        found = self.series.get(key)
        return found if found is not None and len(found) else None

    def first(self, *keys: str) -> tuple[str, Series] | None:
        """The first of ``keys`` that was logged, with its series (Lightning may suffix ``_step``/``_epoch``)."""
        for key in keys:
            found = self.get(key)
            if found is not None:
                return key, found
        return None


def log_files(run_dir: Path) -> list[Path]:
    """``logs/metrics.csv`` then ``logs/resume-1/metrics.csv``, ``resume-2``, ... (numeric order), those that exist."""
    logs = Path(run_dir) / "logs"
    files = [logs / "metrics.csv"] if (logs / "metrics.csv").is_file() else []
    resumed = []
    if logs.is_dir():
        for sub in logs.iterdir():
            match = re.fullmatch(r"resume-(\d+)", sub.name)
            if match and (sub / "metrics.csv").is_file():
                resumed.append((int(match.group(1)), sub / "metrics.csv"))
    return files + [path for _, path in sorted(resumed)]


def _number(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_segment(path: Path) -> dict[str, Series]:
    """The series of one CSV file (rows are sparse: each holds only the keys logged at that moment)."""
    out: dict[str, Series] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            step, epoch = _number(row.get("step")), _number(row.get("epoch"))
            for key, text in row.items():
                if key in (None, "step", "epoch"):
                    continue
                value = _number(text)
                if value is None:
                    continue
                series = out.setdefault(key, Series())
                series.steps.append(int(step) if step is not None else len(series))
                series.epochs.append(int(epoch) if epoch is not None else -1)
                series.values.append(value)
    return out


def _append(into: Series, segment: Series) -> None:
    """``segment`` after ``into``; a resumed segment that starts at an earlier step replaces what it re-ran."""
    if segment.steps:
        start = segment.steps[0]
        keep = [i for i, s in enumerate(into.steps) if s < start]
        into.steps[:] = [into.steps[i] for i in keep]
        into.epochs[:] = [into.epochs[i] for i in keep]
        into.values[:] = [into.values[i] for i in keep]
    into.steps.extend(segment.steps)
    into.epochs.extend(segment.epochs)
    into.values.extend(segment.values)


def read_run_logs(run_dir: str | Path) -> RunLogs:
    """All the CSV logs of ``run_dir`` merged per key; missing or unreadable files are noted, never raised.

    Args:
        run_dir: a run folder written by ``contrastkit train``.

    Returns:
        The merged :class:`RunLogs`; ``problems`` says what was missing (no logs yet, an unreadable file).
    """
    logs = RunLogs()
    files = log_files(Path(run_dir))
    if not files:
        logs.problems.append(
            f"no logs in {Path(run_dir) / 'logs'}: `contrastkit train` writes logs/metrics.csv as the run progresses"
        )
    for path in files:
        try:
            segment = _read_segment(path)
        except (OSError, csv.Error, UnicodeDecodeError) as e:
            logs.problems.append(f"{path}: unreadable ({e}); skipped")
            continue
        logs.files.append(path)
        for key, series in segment.items():
            _append(logs.series.setdefault(key, Series()), series)
    return logs


__all__ = ["RunLogs", "Series", "log_files", "read_run_logs"]
