"""Peak memory and time of one SimCLR training step vs the batch size: plain step vs GradCache with a fixed chunk.

GradCache (Gao et al. 2021, arXiv 2101.06983; ``contrastkit.optim.grad_cache``) embeds the batch in chunks without a
graph, takes the loss gradient w.r.t. the embeddings on the whole batch, then re-runs each chunk with graph: the
activation memory is that of one chunk, so the peak should stay flat in the batch size while the plain step's grows
linearly; the price is one extra forward pass.

Each (mode, batch) runs in a fresh spawned process. On CPU, memory is the rise of the peak resident set
(``VmHWM``, reset through ``/proc/self/clear_refs``) over the resident set before the step, in a child whose
allocator returns freed memory at once (``MALLOC_MMAP_THRESHOLD_=65536``, which slows small allocations, so the time
is measured in another child without it); with CUDA it is ``torch.cuda.max_memory_allocated`` above the memory
allocated before the step. Time is the median over steps of the process's CPU time (all its threads; wall time on
CUDA), which a busy shared machine disturbs less than wall time. The batch is random 28x28 images (two views), the
model contrastkit's ``SmallCNN`` with a 512-wide projection head to 128 (the ``simclr-fashion-mnist`` recipe's
network), or ``--backbone resnet18`` with ``small_input`` at 32x32.

    python benchmarks/gradcache.py                                  # batches 64..2048, chunk 64, CPU
    python benchmarks/gradcache.py --batches 256 1024 --chunk 128 --backbone resnet18
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import time

import torch

from peak_memory import peak_rss_mib


def measure(mode: str, batch: int, args: argparse.Namespace, what: str) -> float:
    """In a fresh process: extra peak MiB (``what="memory"``) or median seconds (``"time"``) of one step."""
    torch.set_num_threads(args.threads)
    from contrastkit.backbones import create_backbone
    from contrastkit.methods.simclr import SimCLR
    from contrastkit.optim.grad_cache import GradCache

    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    torch.manual_seed(0)
    small = args.backbone == "resnet18"
    size = 32 if small else 28
    backbone = create_backbone(args.backbone, in_chans=3 if small else 1, small_input=small)
    method = SimCLR(backbone, hidden_dim=512, projection_dim=128, temperature=0.5).to(device)
    views = [torch.rand(batch, 3 if small else 1, size, size, device=device) for _ in range(2)]
    cache = GradCache(method, args.chunk)

    def step() -> None:
        method.zero_grad(set_to_none=True)
        if mode == "plain":
            method(views).loss.backward()
        else:
            cache(views)
        if device.type == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up
    method.zero_grad(set_to_none=True)
    if what == "memory":
        if device.type == "cuda":
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            step()
            return (torch.cuda.max_memory_allocated() - before) / 2**20
        return peak_rss_mib(step)
    clock = time.perf_counter if device.type == "cuda" else time.process_time  # CPU: robust to a shared machine
    times = []
    for _ in range(args.repeats):
        start = clock()
        step()
        times.append(clock() - start)
    return statistics.median(times)


def in_child(mode: str, batch: int, args: argparse.Namespace, what: str) -> float:
    """``measure`` in a fresh spawned process (for memory, with an allocator that unmaps freed blocks)."""
    if what == "memory":
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"  # read by the child's allocator at start-up
    try:
        with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
            return pool.apply(measure, (mode, batch, args, what))
    finally:
        os.environ.pop("MALLOC_MMAP_THRESHOLD_", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048])
    parser.add_argument("--chunk", type=int, default=64, help="GradCache chunk size (samples)")
    parser.add_argument("--backbone", default="small_cnn", choices=["small_cnn", "resnet18"])
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per configuration (median)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--cpu", action="store_true", help="stay on the CPU even when CUDA is available")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else f"{platform.processor() or platform.machine()}"
    print(f"# torch {torch.__version__}, {device} ({name}), {args.threads} threads; SimCLR, {args.backbone}, 2 views")
    clock = "wall" if device == "cuda" else "CPU"
    print(f"# GradCache chunk {args.chunk}; extra peak MiB of one step; {clock} s: median of {args.repeats} steps")
    print()
    print("| batch | plain MiB | GradCache MiB | mem plain/GC | plain s | GradCache s | time GC/plain |")
    print("|---|---|---|---|---|---|---|")
    for batch in args.batches:
        mem = {m: in_child(m, batch, args, "memory") for m in ("plain", "gradcache")}
        sec = {m: in_child(m, batch, args, "time") for m in ("plain", "gradcache")}
        print(
            f"| {batch} | {mem['plain']:.0f} | {mem['gradcache']:.0f} | {mem['plain'] / mem['gradcache']:.2f} | "
            f"{sec['plain']:.3f} | {sec['gradcache']:.3f} | {sec['gradcache'] / sec['plain']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
