"""Faults injected into real runs: what survived and what was lost (in optimiser steps), with the command that
reproduces each. Tiny runs of `contrastkit train simclr-digits` (2 epochs) and of tests/train/resume_runs.py (the
same SimCLR / MoCo / DINO runs the resume tests use), each in its own process, on the CPU.

    python benchmarks/faults.py            # prints a markdown table for benchmarks/RESULTS.md
    python benchmarks/faults.py --cases epoch_end,ctrl_c_in_step   # only these cases (names: --help)
    python benchmarks/faults.py --cases command_outputs,command_serve   # the commands around training
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from faults_commands import CASES as COMMAND_CASES

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "tests" / "train" / "resume_runs.py"
FULL_DISK = ROOT / "tests" / "train" / "full_disk_run.py"
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


def sigkill_epoch_end(tmp: Path, method: str, processes: int) -> tuple[str, str, str]:
    """kill -9 after an epoch-end checkpoint, with checkpoint_every_minutes=0 and a run ended by max_steps."""
    only = ["trainer.checkpoint_every_n_steps=0", "trainer.checkpoint_every_minutes=0", "trainer.max_epochs=3",
            "trainer.max_steps=20"]  # fmt: skip
    launcher = [sys.executable] if processes == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                         f"--nproc_per_node={processes}"]  # fmt: skip
    full, killed = tmp / f"ee-full-{method}-{processes}", tmp / f"ee-killed-{method}-{processes}"
    run([*launcher, str(RUNS), str(full), method, str(processes), "0", *only], tmp)
    run([*launcher, str(RUNS), str(killed), method, str(processes), "11", *only], tmp)  # 3 steps into epoch 1
    last = killed / "tiny" / "checkpoints" / "last.ckpt"
    kept = state(last)["global_step"]
    done = run([*launcher, str(RUNS), str(killed), method, str(processes), "0", "resume", *only], tmp)
    equal = done.returncode == 0 and same_weights(last, full / "tiny" / "checkpoints" / "last.ckpt")
    position = state(last)["contrastkit"]["data_position"]
    survived = (
        f"epoch-end last.ckpt at step {kept}; resume=last ends {'equal to' if equal else 'DIFFERENT from'} "
        f"the uninterrupted run, at epoch {position['epoch']} batch {position['batches']} (expected 2/4)"
    )
    where = f"{processes} process{'es' if processes > 1 else ''}"
    return (f"SIGKILL at step 11 after an epoch-end checkpoint (checkpoint_every_minutes=0, max_steps=20), {method}, "
            f"{where}", survived, f"{11 - kept} (re-done)")  # fmt: skip


CTRL_C_IN_STEP = """
import sys; sys.path.insert(0, {root!r})
import pytest
from contrastkit.train.fit import train
from tests.train.resume_runs import resume_config
from tests.train.test_interrupt_state import {callback}
try:
    train(resume_config({out!r}, "simclr", 1, "trainer.checkpoint_every_n_steps=1", "trainer.keep_checkpoints=16"),
          callbacks=[{callback}(5)])
except SystemExit:
    pass
"""


def ctrl_c_in_step(tmp: Path) -> tuple[str, str, str]:
    """A real SIGINT inside step 6's forward pass, then inside step 6's optimiser step."""
    full = tmp / "cs-full"
    code = "import sys; sys.path.insert(0, {root!r}); from contrastkit.train.fit import train; from " \
           "tests.train.resume_runs import resume_config; train(resume_config({out!r}, 'simclr', 1, " \
           "'trainer.checkpoint_every_n_steps=1', 'trainer.keep_checkpoints=16'))"  # fmt: skip
    run([sys.executable, "-c", code.format(root=str(ROOT), out=str(full))], tmp)
    parts = []
    for callback in ("CtrlCInForward", "CtrlCInOptimizerStep"):
        out = tmp / f"cs-{callback}"
        run([sys.executable, "-c", CTRL_C_IN_STEP.format(root=str(ROOT), out=str(out), callback=callback)], tmp)
        saved = state(out / "tiny" / "checkpoints" / "interrupted.ckpt")
        step = saved["global_step"]
        reference = state(full / "tiny" / "checkpoints" / f"step-{step:07d}.ckpt")["state_dict"]
        tracked = [k for k in reference if k.endswith("num_batches_tracked")]
        counts = f"num_batches_tracked {int(saved['state_dict'][tracked[0]])} vs {int(reference[tracked[0]])}"
        resume = f"resume={out / 'tiny' / 'checkpoints' / 'interrupted.ckpt'}"
        code_resume = code.replace("'trainer.keep_checkpoints=16'", f"'trainer.keep_checkpoints=16', {resume!r}")
        done = run([sys.executable, "-c", code_resume.format(root=str(ROOT), out=str(out))], tmp)
        equal = done.returncode == 0 and same_weights(out / "tiny" / "checkpoints" / "last.ckpt",
                                                       full / "tiny" / "checkpoints" / "last.ckpt")  # fmt: skip
        where = "forward pass" if callback == "CtrlCInForward" else "optimiser step"
        parts.append(f"in the {where}: interrupted.ckpt at step {step}, {counts} (uninterrupted run after step "
                     f"{step}); resumed {'equal' if equal else 'DIFFERENT'}")  # fmt: skip
    return "Ctrl-C (real SIGINT) inside step 6: forward pass, then optimiser step", "; ".join(parts), "0"


def _tmpfs(tmp: Path, mode: str, size: str) -> dict | None:
    disk = tmp / f"disk-{mode}"
    disk.mkdir()
    shell = 'mount -t tmpfs -o size="$1" tmpfs "$2" && exec "$3" "$4" "$5" "$2"'
    done = run(["unshare", "-rm", "sh", "-c", shell, "sh", size, str(disk), sys.executable, str(FULL_DISK), mode], tmp)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def full_disk(tmp: Path) -> tuple[str, str, str]:
    """A real 2 MiB tmpfs as out_dir (a mount namespace, no root), then one filled before the encoder is written."""
    if shutil.which("unshare") is None:
        return "full disk (2 MiB tmpfs)", "not run: no unshare on this machine", "-"
    parts = []
    for mode, size in (("checkpoint", "2m"), ("encoder", "4m")):
        result = _tmpfs(tmp, mode, size)
        if result is None:
            return "full disk (2 MiB tmpfs)", "not run: this machine allows no user-namespace tmpfs mount", "-"
        line = (result["stderr"].strip().splitlines() or ["?"])[-1].replace("contrastkit train: error: ", "")
        temporaries = [f for f in result["files"] if f.endswith(".tmp")]
        left = f"temporaries left: {temporaries}" if temporaries else "no temporary left"
        step = result["last_global_step"]
        parts.append(f"{mode}: rc {result['rc']}, `{line[:150]}...`; last.ckpt loads (step {step}), {left}")
    return "full disk: 2 MiB tmpfs as out_dir; a disk filled before encoder.safetensors", "; ".join(parts), "0"


def bad_inputs(tmp: Path) -> tuple[str, str, str]:
    """A folder of only corrupt images, an empty folder, a batch larger than the data then the corrected rerun."""
    corrupt, empty, out = tmp / "corrupt", tmp / "empty", tmp / "bad-inputs"
    corrupt.mkdir()
    empty.mkdir()
    for i in range(37):
        (corrupt / f"{i:02d}.jpg").write_bytes(b"not a jpeg")
    lines = []
    for folder in (corrupt, empty):
        done = run(cli("train", "simclr-digits", f"out_dir={out}", f"name={folder.name}", f"data.path={folder}", *TINY),
                   tmp)  # fmt: skip
        written = (out / folder.name).exists()
        lines.append(f"rc {done.returncode}: `{(done.stderr.strip().splitlines() or ['?'])[-1][26:140]}...`"
                     f"{'; a run folder was written' if written else '; nothing written'}")  # fmt: skip
    big = run(cli("train", "simclr-digits", f"out_dir={out}", "name=big", "data.batch_size=5000", *TINY), tmp)
    rerun = run(cli("train", "simclr-digits", f"out_dir={out}", "name=big", *TINY), tmp)
    lines.append(f"data.batch_size=5000: rc {big.returncode}, then the corrected command without overwrite: "
                 f"rc {rerun.returncode}")  # fmt: skip
    return "all-corrupt folder; empty folder; batch larger than the data, then rerun", "; ".join(lines), "0"


def main() -> None:
    cases = {
        "sigkill_mid_epoch": lambda tmp: (
            [sigkill_mid_epoch(tmp, m, 1) for m in ("simclr", "moco", "dino")] + [sigkill_mid_epoch(tmp, "simclr", 2)]
        ),
        "lost_worker": lambda tmp: [lost_worker(tmp)],
        "ctrl_c": lambda tmp: [ctrl_c(tmp)],
        "refused_resume": lambda tmp: [refused_resume(tmp)],
        "nan_loss": lambda tmp: [nan_loss(tmp)],
        "epoch_end": lambda tmp: (
            [sigkill_epoch_end(tmp, m, 1) for m in ("simclr", "moco", "dino")] + [sigkill_epoch_end(tmp, "simclr", 2)]
        ),
        "ctrl_c_in_step": lambda tmp: [ctrl_c_in_step(tmp)],
        "full_disk": lambda tmp: [full_disk(tmp)],
        "bad_inputs": lambda tmp: [bad_inputs(tmp)],
        **{f"command_{name}": case for name, case in COMMAND_CASES.items()},  # export, embed, index, predict, serve
    }
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(cases), help=f"comma-separated, of: {', '.join(cases)}")
    chosen = [c.strip() for c in parser.parse_args().cases.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in cases]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(cases)}")
    print(f"# faults; {torch.get_num_threads()} threads; each run in its own process")
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for case in chosen:
            start = time.perf_counter()
            rows.extend(cases[case](tmp))
            print(f"# {case}: {time.perf_counter() - start:.0f} s", flush=True)
    print("| fault | what survived | steps lost |\n|---|---|---|")
    for fault, survived, lost in rows:
        print(f"| {fault} | {survived} | {lost} |")


if __name__ == "__main__":
    main()
