"""NT-Xent forward+backward: contrastkit's row-blocked InfoNCELoss vs lightly's NTXentLoss vs the GEMM floor.

For each batch of N pairs (2N embeddings of dimension D, temperature 0.1) it measures, in this one process:

* time: median wall time of forward + backward over ``--repeats`` runs (after one warm-up run);
* peak extra memory: the rise of the process's peak resident set size (VmHWM, reset through
  ``/proc/self/clear_refs``) above the resident size before the step, i.e. everything the step allocates
  (the script re-executes itself with ``MALLOC_MMAP_THRESHOLD_=65536`` so freed memory is returned at once);
* the GEMM floor: the three matrix products any exact implementation needs (S = Z Z^T forward, and G Z, G^T Z
  backward), timed the same way: a lower bound on time, not an implementation.

Ratios are printed against lightly in the same run; absolute numbers depend on the machine.

    python benchmarks/losses.py                       # N = 256, 1024, 4096, 8192
    python benchmarks/losses.py --sizes 1024 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch

from contrastkit.losses import InfoNCELoss


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(step: Callable[[], torch.Tensor], repeats: int) -> tuple[float, float, float]:
    """Return (median seconds, peak extra MiB, loss value) of ``step`` (forward + backward)."""
    value = float(step())  # warm-up
    times = []
    peak = 0
    for _ in range(repeats):
        before = _status_kib("VmRSS")
        _reset_peak()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        peak = max(peak, _status_kib("VmHWM") - before)
    return statistics.median(times), peak / 1024, value


def make_steps(n: int, dim: int, temperature: float) -> dict[str, Callable[[], torch.Tensor]]:
    from lightly.loss import NTXentLoss

    g = torch.Generator().manual_seed(0)
    z_a = torch.randn(n, dim, generator=g).requires_grad_()
    z_b = torch.randn(n, dim, generator=g).requires_grad_()
    ours = InfoNCELoss(temperature)
    lightly = NTXentLoss(temperature)
    z_floor = torch.randn(2 * n, dim, generator=g)

    def run(loss_fn):
        def step():
            z_a.grad = z_b.grad = None
            value = loss_fn(z_a, z_b)
            value.backward()
            return value.detach()

        return step

    def floor():
        sim = z_floor @ z_floor.T  # (2N, 2N) forward similarities, reused as the backward weights
        grad = sim @ z_floor  # (2N, D)
        grad += sim.T @ z_floor
        return grad[0, 0]

    return {"lightly": run(lightly), "contrastkit": run(ours), "gemm floor": floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096, 8192], help="pairs N")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # Serve every allocation over 64 KiB by mmap so freed memory leaves the resident set at once; otherwise
        # glibc keeps freed tiles resident and the peak-memory reading depends on what ran before.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
    torch.set_num_threads(args.threads)
    print(
        f"# NT-Xent fwd+bwd, D={args.dim}, t={args.temperature}, torch {torch.__version__}, "
        f"{args.threads} threads, {platform.processor() or platform.machine()}"
    )
    header = (
        "| N pairs | lightly s | contrastkit s | floor s | time ck/lightly | time ck/floor "
        "| lightly MiB | contrastkit MiB | mem ck/lightly | loss diff |"
    )
    print(header)
    print("|---" * 10 + "|")
    for n in args.sizes:
        steps = make_steps(n, args.dim, args.temperature)
        res = {name: measure(step, args.repeats) for name, step in steps.items()}
        (tl, ml, vl), (tc, mc, vc), (tf, _, _) = res["lightly"], res["contrastkit"], res["gemm floor"]
        print(
            f"| {n} | {tl:.3f} | {tc:.3f} | {tf:.3f} | {tc / tl:.2f} | {tc / tf:.2f} "
            f"| {ml:.0f} | {mc:.0f} | {mc / max(ml, 1e-9):.3f} | {abs(vc - vl):.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
