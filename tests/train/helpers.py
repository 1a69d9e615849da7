"""Small, fast run configs for the trainer tests (sklearn's digits, the small CNN, a few steps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contrastkit.train.config import RunConfig, load_config


def tiny_config(out_dir: Path, *overrides: str, method: str = "simclr", **sections: Any) -> RunConfig:
    """A SimCLR-on-digits run of a few steps; ``overrides`` as on the command line."""
    base: dict[str, Any] = {
        "name": "tiny",
        "out_dir": str(out_dir),
        "seed": 0,
        "method": {"name": method, "hidden_dim": 64, "projection_dim": 32, "temperature": 0.5},
        "views": {"recipe": "simclr", "jitter_strength": 0.5},
        "backbone": {"name": "small_cnn"},
        "data": {"name": "digits", "batch_size": 64, "num_workers": 0},
        "optim": {"name": "sgd", "lr": 0.1, "warmup_epochs": 0.5},
        "trainer": {"max_epochs": 2, "enable_progress_bar": False, "log_every_n_steps": 1, "accelerator": "cpu"},
        "monitor": {"every_n_epochs": 0},
        "final_eval": {"enabled": False},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return load_config(base, list(overrides))


def run_process_group(command: list[str], env: dict[str, str], cwd: Path, timeout: float = 300):
    """``subprocess.run`` for launchers (torchrun) whose workers must not outlive a timeout: the command gets its own
    process group, killed whole when the time is up (then TimeoutExpired is raised as by ``subprocess.run``)."""
    import os
    import signal
    import subprocess

    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def kill_matrix(suite: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The (method, processes) pairs a SIGKILL-and-resume test runs: ``suite`` in ``make test`` (each pair is ~25 s of
    two cores), and every method on 1 and 2 processes with ``CONTRASTKIT_FULL_KILL_MATRIX=1`` (``make bench``)."""
    import os

    if os.environ.get("CONTRASTKIT_FULL_KILL_MATRIX") == "1":
        return [(method, processes) for method in ("dino", "moco", "simclr") for processes in (1, 2)]
    return suite
