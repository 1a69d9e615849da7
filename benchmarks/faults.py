"""Faults injected into real runs: what survived and what was lost (in optimiser steps), with the command that
reproduces each. Tiny runs of `contrastkit train simclr-digits` (2 epochs) and of tests/train/resume_runs.py (the
same SimCLR / MoCo / DINO runs the resume tests use), each in its own process, on the CPU.

    python benchmarks/faults.py            # prints a markdown table for benchmarks/RESULTS.md
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "tests" / "train" / "resume_runs.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
TINY = ["trainer.max_epochs=2", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
        "monitor.every_n_epochs=0", "final_eval.enabled=false", "trainer.checkpoint_every_n_steps=3"]  # fmt: skip


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "contrastkit", *args]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=ENV, cwd=cwd, capture_output=True, text=True, timeout=600)


def state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def same_weights(a: Path, b: Path) -> bool:
    x, y = state(a)["state_dict"], state(b)["state_dict"]
    return x.keys() == y.keys() and all(torch.allclose(x[k].float(), y[k].float(), rtol=1e-5, atol=1e-6) for k in x)


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def sigkill_mid_epoch(tmp: Path, method: str, processes: int) -> tuple[str, str, str]:
    args = [str(RUNS), "{out}", method, str(processes)]
    launcher = [sys.executable] if processes == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                         f"--nproc_per_node={processes}"]  # fmt: skip
    full, killed = tmp / f"full-{method}-{processes}", tmp / f"killed-{method}-{processes}"
    run([*launcher, *[a.format(out=full) for a in args], "0"], tmp)
    run([*launcher, *[a.format(out=killed) for a in args], "13"], tmp)  # SIGKILL before step 13 (of 16)
    last = killed / "tiny" / "checkpoints" / "last.ckpt"
    kept = state(last)["global_step"]
    done = run([*launcher, *[a.format(out=killed) for a in args], "0", "resume"], tmp)
    equal = done.returncode == 0 and same_weights(last, full / "tiny" / "checkpoints" / "last.ckpt")
    survived = (
        f"last.ckpt at step {kept}; resume=last ends {'equal to' if equal else 'DIFFERENT from'} the uninterrupted run"
    )
    where = f"{processes} process{'es' if processes > 1 else ''}"
    return f"SIGKILL at step 13, {method}, {where}", survived, f"{13 - kept} (re-done)"


def lost_worker(tmp: Path) -> tuple[str, str, str]:
    full, job = tmp / "lw-full", tmp / "lw-job"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run([*torchrun, str(RUNS), str(full), "simclr", "2", "0"], tmp)
    done = run([*torchrun, "--max-restarts=1", str(RUNS), str(job), "simclr", "2", "13", "lose-rank-1"], tmp)
    last = job / "tiny" / "checkpoints" / "last.ckpt"
    equal = done.returncode == 0 and same_weights(last, full / "tiny" / "checkpoints" / "last.ckpt")
    verdict = "equal" if equal else "DIFFERENT"
    survived = f"job restarted itself from step 12 and finished (rc {done.returncode}); weights {verdict}"
    return "process 1 of 2 SIGKILLed at step 13, torchrun --max-restarts=1", survived, "1 (re-done)"


def ctrl_c(tmp: Path) -> tuple[str, str, str]:
    out = tmp / "ctrlc"
    command = cli("train", "simclr-digits", f"out_dir={out}", "name=run", *TINY)
    process = subprocess.Popen(command, env=ENV, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoints = out / "run" / "checkpoints"
    while process.poll() is None and not list(checkpoints.glob("step-*.ckpt")):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    interrupted = checkpoints / "interrupted.ckpt"
    step = state(interrupted)["global_step"] if interrupted.is_file() else None
    said = next((line for line in err.splitlines() if "resume=" in line), "(no resume line)")
    done = run(cli("train", "simclr-digits", f"out_dir={out}", "name=run", *TINY, f"resume={interrupted}"), tmp)
    survived = f"interrupted.ckpt at step {step}, told: `{said.strip()[:90]}...`; resumed rc {done.returncode}"
    return "Ctrl-C (SIGINT) mid-run", survived, "0"


def refused_resume(tmp: Path) -> tuple[str, str, str]:
    out = tmp / "refused"
    run(cli("train", "simclr-digits", f"out_dir={out}", "name=run", *TINY), tmp)
    before = digest(out / "run")
    wrong = run(cli("train", "simclr-digits", f"out_dir={out}", "name=run", *TINY, "method.projection_dim=32",
                    "resume=last"), tmp)  # fmt: skip
    last = out / "run" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:4096])  # a truncated checkpoint
    truncated = run(cli("train", "simclr-digits", f"out_dir={out}", "name=run", *TINY, "resume=last"), tmp)
    after = digest(out / "run")
    changed = [k for k in before if before[k] != after.get(k) and not k.endswith("last.ckpt")]
    lines = (
        (wrong.stderr.strip().splitlines() or ["?"])[-1][-90:],
        (truncated.stderr.strip().splitlines() or ["?"])[-1][-90:],
    )
    survived = (f"both refused (rc {wrong.returncode}, {truncated.returncode}): `...{lines[0]}`, `...{lines[1]}`; "
                f"{'no other file changed' if not changed else f'CHANGED: {changed}'}")  # fmt: skip
    return "resume=last with a changed head size; then with last.ckpt truncated", survived, "0"


def nan_loss(tmp: Path) -> tuple[str, str, str]:
    out = tmp / "nan"
    stop = run(cli("train", "simclr-digits", f"out_dir={out}", "name=stop", *TINY, "optim.lr=1e30"), tmp)
    skip = run(cli("train", "simclr-digits", f"out_dir={out}", "name=skip", *TINY, "optim.lr=1e30",
                   "trainer.on_nonfinite=skip", "trainer.nonfinite_limit=3"), tmp)  # fmt: skip
    line = (stop.stderr.strip().splitlines() or ["?"])[-1][:80]
    survived = (
        f"stopped, rc {stop.returncode}: `{line}...`; with on_nonfinite=skip: rc {skip.returncode} after the limit"
    )
    return "non-finite loss (optim.lr=1e30)", survived, "the diverged steps (none saved)"


def main() -> None:
    print(f"# faults; {torch.get_num_threads()} threads; each run in its own process")
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for method in ("simclr", "moco", "dino"):
            rows.append(sigkill_mid_epoch(tmp, method, 1))
        rows.append(sigkill_mid_epoch(tmp, "simclr", 2))
        for fault in (lost_worker, ctrl_c, refused_resume, nan_loss):
            start = time.perf_counter()
            rows.append(fault(tmp))
            print(f"# {fault.__name__}: {time.perf_counter() - start:.0f} s", flush=True)
    print("| fault | what survived | steps lost |\n|---|---|---|")
    for fault, survived, lost in rows:
        print(f"| {fault} | {survived} | {lost} |")


if __name__ == "__main__":
    main()
