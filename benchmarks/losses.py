"""NT-Xent forward+backward: contrastkit's row-blocked InfoNCELoss vs lightly's NTXentLoss vs the GEMM floor.

For each batch of N pairs (2N embeddings of dimension D, temperature 0.1) it measures, in this one process:

* time: median wall time of forward + backward over ``--repeats`` runs (after one warm-up run);
* peak extra memory: the rise of the process's peak resident set size (VmHWM, reset through
  ``/proc/self/clear_refs``) above the resident size before the step, i.e. everything the step allocates
  (measured in a child process with ``MALLOC_MMAP_THRESHOLD_=65536`` so freed memory is returned at once);
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
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from contrastkit.losses import InfoNCELoss
from peak_memory import peak_rss_mib


def measure_time(step: Callable[[], torch.Tensor], repeats: int) -> tuple[float, float]:
    """Return (median seconds, loss value) of ``step`` (forward + backward) after one warm-up run."""
    value = float(step())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def measure_memory(step: Callable[[], torch.Tensor]) -> float:
    """Peak extra MiB of one ``step`` after a warm-up run (meaningful with MALLOC_MMAP_THRESHOLD_ set)."""
    step()
    return peak_rss_mib(step)


def memory_in_child(name: str, n: int, args: argparse.Namespace) -> float:
    """Run ``measure_memory`` for one implementation in a fresh process whose allocator returns freed memory.

    With ``MALLOC_MMAP_THRESHOLD_=65536`` every allocation over 64 KiB is its own mapping, unmapped when freed,
    so the resident set tracks live tensors; the same setting slows small ops, so timings are taken here instead.
    """
    cmd = [sys.executable, __file__, "--memory-of", name, "--sizes", str(n), "--dim", str(args.dim)]
    cmd += ["--temperature", str(args.temperature), "--threads", str(args.threads)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


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
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # internal: child process measuring memory
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_of:
        print(measure_memory(make_steps(args.sizes[0], args.dim, args.temperature)[args.memory_of]))
        return
    print(
        f"# NT-Xent fwd+bwd, D={args.dim}, t={args.temperature}, torch {torch.__version__}, "
        f"{args.threads} threads, {platform.processor() or platform.machine()}"
    )
    print(
        "| N pairs | lightly s | contrastkit s | floor s | time ck/lightly | time ck/floor "
        "| lightly MiB | contrastkit MiB | mem ck/lightly | loss diff |"
    )
    print("|---" * 10 + "|")
    for n in args.sizes:
        steps = make_steps(n, args.dim, args.temperature)
        (tl, vl), (tc, vc), (tf, _) = (
            measure_time(steps[k], args.repeats) for k in ("lightly", "contrastkit", "gemm floor")
        )
        del steps
        ml, mc = memory_in_child("lightly", n, args), memory_in_child("contrastkit", n, args)
        print(
            f"| {n} | {tl:.3f} | {tc:.3f} | {tf:.3f} | {tc / tl:.2f} | {tc / tf:.2f} "
            f"| {ml:.0f} | {mc:.0f} | {mc / max(ml, 1e-9):.3f} | {abs(vc - vl):.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
