"""What a run may do to its folder: never start over an earlier run unless told to, and never resume from a
checkpoint that does not fit, so that a mistyped command destroys nothing (checked before anything is written)."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from contrastkit.train.config import ConfigError, RunConfig, config_to_dict

# what a run writes in its folder (report.html comes from `contrastkit report`)
RUN_OUTPUTS = ("config.json", "checkpoints", "logs", "tensorboard", "encoder.safetensors", "encoder.json",
               "final_eval.json", "report.html")  # fmt: skip
# settings a resumed run cannot change: they decide the weights' shapes and meaning
FIXED_ON_RESUME = ("method", "backbone")


def refuse_earlier_run(config: RunConfig) -> None:
    """Refuse to start over an earlier run in ``config.run_dir`` unless ``resume=`` continues it or
    ``overwrite=true`` replaces it. Checked before any data is read; nothing is written.

    Raises:
        ConfigError: the folder holds a run and neither ``resume`` nor ``overwrite`` is set.
    """
    found = _run_outputs(config.run_dir)
    if found and config.resume is None and not config.overwrite and not never_trained(config.run_dir):
        raise ConfigError(
            f"{config.run_dir} holds a run already ({', '.join(found)}): continue it with resume=last, replace it "
            "with overwrite=true, or give this run another name=..."
        )


def continue_after_restart(config: RunConfig) -> tuple[RunConfig, str | None]:
    """Under ``torchrun --max-restarts=N``, a job restarted after a lost worker (``TORCHELASTIC_RESTART_COUNT`` >
    0) runs the same command again: it continues its own run from ``checkpoints/last.ckpt`` (``resume=last``, even
    if the command said ``overwrite=true``), or starts the run again when the first attempt died before any
    checkpoint. Returns the config to run and the line to print (None: not a restart)."""
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if restarts == 0:
        return config, None
    last = config.run_dir / "checkpoints" / "last.ckpt"
    if config.resume is not None and config.resume != "last":
        return config, None  # an explicit checkpoint: the user's choice stands
    if last.is_file():
        line = f"contrastkit: restart {restarts} of this job (a worker was lost): continuing from {last}"
        return replace(config, resume="last", overwrite=False), line
    line = f"contrastkit: restart {restarts} of this job (a worker was lost before any checkpoint): starting again"
    return replace(config, resume=None, overwrite=True), line


def connect_restarted_job(accelerator: str, groups_ended: int = 0) -> None:
    """Join the process group of a job torchrun restarted, or of a later run in the same torchrun script, on keys of
    this attempt and this run only.

    torchrun hands every attempt the same agent store (same ``MASTER_PORT``) and torch's ``env://`` rendezvous adds
    no per-attempt prefix (torch 2.14), so a restarted process can read the lost attempt's peer addresses and fail
    with "connectFullMesh ... Connection refused". The same happens to the second ``train()`` of one script (its
    group's keys are those of the group the first one started and destroyed; ``groups_ended`` counts those): it
    failed so, or hung. Initialising the group here on a prefix of the restart count and of ``groups_ended`` avoids
    that; Lightning then uses the group as it is. Nothing happens outside a torchrun restart or a later run.
    """
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if (restarts == 0 and groups_ended == 0) or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return
    import torch.distributed as dist

    if dist.is_initialized():
        return
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False)
    backend = "nccl" if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    prefix = f"contrastkit/attempt_{restarts}/run_{groups_ended}"
    dist.init_process_group(backend, store=dist.PrefixStore(prefix, store), rank=rank, world_size=world)


def remove_earlier_run(config: RunConfig) -> None:
    """With ``overwrite=true``, remove the earlier run's outputs (so nothing stale stays beside the new ones); without
    it, a new run (no ``resume``) removes what an attempt that never trained a step left (:func:`never_trained`).
    Called once everything else has been checked, just before the new run writes."""
    if config.overwrite or (config.resume is None and never_trained(config.run_dir)):
        remove_outputs(config.run_dir)


def remove_outputs(run_dir: Path) -> None:
    """Remove the run outputs (:data:`RUN_OUTPUTS`) in ``run_dir``; any other file there is left alone. Also what
    :func:`~contrastkit.train.fit.train` calls when the run it started failed before its first optimiser step: all
    it wrote was ``config.json`` and empty folders, which would otherwise block the corrected command."""
    for name in _run_outputs(run_dir):
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def never_trained(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds only what a start that never trained a step leaves (``config.json`` and empty
    ``logs`` / ``tensorboard`` / ``checkpoints`` folders, a killed write's temporary at most): no checkpoint, no
    encoder, no metrics, nothing a resume or a reader could use. Such a folder is not an earlier run."""
    found = _run_outputs(run_dir)
    if not found or not set(found) <= {"config.json", "logs", "tensorboard", "checkpoints"}:
        return False
    for name in found:
        folder = run_dir / name
        if folder.is_dir() and any(p.is_file() and not _temporary(p) for p in folder.rglob("*")):
            return False
    return True


def _temporary(path: Path) -> bool:
    """A temporary checkpoint a killed write left (``.last.ckpt.*.tmp``): never a checkpoint."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def _run_outputs(run_dir: Path) -> list[str]:
    return [name for name in RUN_OUTPUTS if (run_dir / name).exists()]


def _differences(saved: Any, current: Any, prefix: str) -> list[str]:
    """``key (saved -> current)`` for every leaf that differs between two nested config sections."""
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(set(saved) | set(current))
        return [d for k in keys for d in _differences(saved.get(k), current.get(k), f"{prefix}.{k}")]
    return [] if saved == current else [f"{prefix} ({saved!r} -> {current!r})"]


def check_resume(path: str, config: RunConfig, module: torch.nn.Module) -> None:
    """Refuse, before anything is written, a checkpoint that cannot continue this run: unreadable or truncated, not
    from ``contrastkit train``, trained with another method or architecture (the differing keys are named), or
    holding weights that do not fit the module.

    Raises:
        ConfigError: what is wrong, and what to do instead.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"resume: {path} cannot be read as a checkpoint ({first}); it is left as it was") from None
    info = (ckpt.get("contrastkit") or {}).get("info") if isinstance(ckpt, dict) else None
    if not info or "state_dict" not in ckpt:
        raise ConfigError(f"resume: {path} is not a contrastkit train checkpoint")
    saved, current = info.get("config") or {}, config_to_dict(config)
    changed = [d for section in FIXED_ON_RESUME for d in _differences(saved.get(section), current[section], section)]
    if saved and changed:
        raise ConfigError(
            f"resume: {path} was trained with other settings that cannot change on resume: {'; '.join(changed)}. "
            "Resume with the checkpoint's settings, or start a new run (another name=, or overwrite=true)"
        )
    ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    bad = sorted(set(ours) ^ set(theirs)) + sorted(k for k in set(ours) & set(theirs) if ours[k] != theirs[k])
    if bad:
        raise ConfigError(
            f"resume: {path} holds weights that do not fit this run's model ({len(bad)} keys differ, e.g. "
            f"{', '.join(bad[:3])}); resume with the settings it was trained with"
        )
