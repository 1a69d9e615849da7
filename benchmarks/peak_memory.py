"""Peak resident memory of one call, for the CPU memory benchmarks (Linux ``/proc``; imported by the scripts here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmRSS``: resident now, ``VmHWM``: peak since the last reset)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_rss_mib(step: Callable[[], Any]) -> float:
    """MiB by which the peak resident set of ``step()`` exceeds the resident set before it (the peak is reset
    through ``/proc/self/clear_refs``; meaningful when the allocator returns freed memory, MALLOC_MMAP_THRESHOLD_)."""
    before = status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    step()
    return (status_kib("VmHWM") - before) / 1024
