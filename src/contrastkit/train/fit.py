"""``train(config)``: a validated :class:`RunConfig` to a trained, exported and evaluated encoder, on Lightning."""

from __future__ import annotations

import contextlib
import copy
import errno
import importlib.util
import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint, ThroughputMonitor
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from contrastkit.backbones import save_encoder
from contrastkit.methods import Method, get_method
from contrastkit.train.checkpoint_io import AtomicCheckpointIO, no_space_error, out_of_space
from contrastkit.train.config import ConfigError, RunConfig, TrainerConfig, config_to_dict
from contrastkit.train.interrupt import InterruptCheckpoint
from contrastkit.train.run_folder import (
    check_resume,
    connect_restarted_job,
    continue_after_restart,
    refuse_earlier_run,
    remove_earlier_run,
    remove_outputs,
)
from contrastkit.train.tasks import get_task


@dataclass
class TrainResult:
    """Where a run's outputs are, and its numbers."""

    run_dir: Path  # the run folder
    encoder: Path | None  # encoder.safetensors (None on processes other than rank 0)
    checkpoint: Path | None  # the last checkpoint
    monitor: list[dict[str, float]]  # per-epoch monitor metrics
    final_eval: dict[str, Any] | None  # kNN / linear probe table, when enabled and labelled data exists


def check_grad_cache(config: RunConfig, method: Method) -> None:
    """Refuse ``trainer.grad_cache_chunk_size > 0`` for a method without ``embed_batch``/``loss_from_embeddings``."""
    if config.trainer.grad_cache_chunk_size > 0 and not type(method).supports_grad_cache:
        from contrastkit.optim.grad_cache import available_methods

        raise ConfigError(
            f"trainer.grad_cache_chunk_size={config.trainer.grad_cache_chunk_size}: method {config.method['name']!r} "
            f"does not support gradient caching (its loss is not computed from per-sample embeddings it exposes); "
            f"methods that do: {', '.join(available_methods())}. Set trainer.grad_cache_chunk_size=0"
        )


def _devices(text: str) -> Any:
    text = text.strip()
    if text.isdigit() or text == "-1":
        return int(text)
    if "," in text:
        return [int(d) for d in text.split(",") if d.strip()]
    return text


def _uses_cuda(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def batch_rows(batch: Any) -> int:
    """Samples in a training batch (images, texts or sequences first), for the throughput log; a batch whose images
    were all unreadable (it trains nothing) counts as one, because Lightning's monitor refuses fewer samples than
    batches so far (a first batch of only corrupt files stopped the run)."""
    return max(len(batch[0]), 1)


def build_trainer(config: RunConfig, callbacks: list[pl.Callback], loggers: list[Logger]) -> pl.Trainer:
    """The Lightning ``Trainer`` of the trainer section, with atomic checkpoint files.

    SyncBatchNorm needs CUDA (PyTorch's implementation): on CPU processes BatchNorm statistics stay per process.
    With gradient caching (``trainer.grad_cache_chunk_size > 0``) the module optimises manually, which Lightning
    refuses with ``accumulate_grad_batches`` or ``gradient_clip_val`` set: the Trainer gets neutral values and
    :class:`LitMethod` applies the config's.
    """
    t = config.trainer
    sync_batchnorm = t.sync_batchnorm and _uses_cuda(t.accelerator)
    manual = t.grad_cache_chunk_size > 0
    return pl.Trainer(
        max_epochs=t.max_epochs,
        max_steps=t.max_steps,
        accelerator=t.accelerator,
        devices=_devices(t.devices),
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        accumulate_grad_batches=1 if manual else t.accumulate_grad_batches,
        gradient_clip_val=None if manual else t.gradient_clip_val,
        sync_batchnorm=sync_batchnorm,
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        deterministic=t.deterministic,
        enable_progress_bar=t.enable_progress_bar,
        enable_model_summary=False,
        use_distributed_sampler=False,  # the data module shards batches itself (same global batch at any scale)
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(config.run_dir),
    )


def _loggers(run_dir: Path, resuming: bool) -> list[Logger]:
    """CSV logs in ``logs/metrics.csv``; a resumed run writes ``logs/resume-N/metrics.csv`` and keeps the earlier
    files (Lightning's CSV logger would otherwise replace them)."""
    version = ""
    if resuming:
        n = 1
        while (run_dir / "logs" / f"resume-{n}").exists():
            n += 1
        version = f"resume-{n}"
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="logs", version=version)]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    return loggers


def resolve_resume(config: RunConfig) -> str | None:
    """The checkpoint to resume from: ``"last"`` is the run's own ``checkpoints/last.ckpt``."""
    if config.resume is None:
        return None
    path = config.run_dir / "checkpoints" / "last.ckpt" if config.resume == "last" else Path(config.resume)
    path = path.expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"resume: checkpoint {str(path)!r} does not exist")
    return str(path)


@contextlib.contextmanager
def known_lightning_warnings_silenced() -> Iterator[None]:
    """Lightning warnings that say nothing to a contrastkit user: frozen towers (CLIP's locked text encoder) are in
    eval mode on purpose, and Lightning's own use of a torch pytree API deprecated in torch 2.14."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
        # contrastkit's batch samplers resume mid-epoch themselves (the position is in the checkpoint), and a
        # resumed run's checkpoint folder is its own
        warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch")
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        yield


def checkpoint_callbacks(checkpoints: Path, t: TrainerConfig) -> list[pl.Callback]:
    """``last.ckpt`` at the end of every epoch and, mid-epoch, every ``t.checkpoint_every_n_steps`` optimiser steps
    or else every ``t.checkpoint_every_minutes`` (each such save also writes ``step-NNNNNNN.ckpt``, the newest
    ``t.keep_checkpoints`` kept); ``interrupted.ckpt`` on a crash or Ctrl-C. Every file is replaced atomically
    (AtomicCheckpointIO). ``resume=last`` continues from the newest, mid-epoch included, on the same stream of
    batches (the sampler's position is in the checkpoint) and views (seeded per batch)."""
    last = ModelCheckpoint(
        dirpath=checkpoints,
        filename="last",
        save_top_k=1,
        enable_version_counter=False,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
    )
    callbacks: list[pl.Callback] = [last, InterruptCheckpoint(checkpoints / "interrupted.ckpt")]
    if t.checkpoint_every_n_steps > 0 or t.checkpoint_every_minutes > 0:
        by_steps = t.checkpoint_every_n_steps > 0
        clock = ModelCheckpoint(
            dirpath=checkpoints,
            filename="step-{step:07d}",
            auto_insert_metric_name=False,
            monitor="step",  # the newest keep_checkpoints snapshots are the "best"
            mode="max",
            save_top_k=t.keep_checkpoints,
            save_last=True,
            enable_version_counter=False,
            every_n_train_steps=t.checkpoint_every_n_steps if by_steps else None,
            train_time_interval=None if by_steps else timedelta(minutes=t.checkpoint_every_minutes),
            save_on_train_epoch_end=False,
        )
        callbacks.insert(1, clock)
    return callbacks


def remove_stale_temporaries(checkpoints: Path) -> None:
    """Temporary checkpoint files a killed write left behind (``.last.ckpt.*.tmp``): never a checkpoint."""
    for tmp in checkpoints.glob(".*.ckpt.*.tmp"):
        tmp.unlink(missing_ok=True)


def _is_unexplained_full_disk(error: BaseException) -> bool:
    """A full disk met by a write other than a checkpoint's (the CSV logs, TensorBoard, config.json): an ENOSPC
    error that does not say yet what to do (the checkpoint writer's own error does)."""
    return isinstance(error, OSError) and error.errno == errno.ENOSPC and not str(error.strerror).startswith("no space")


def _full_disk_while_training(error: OSError, run_dir: Path) -> OSError:
    """The one-line error of a full disk met while training by a write other than a checkpoint's."""
    last = run_dir / "checkpoints" / "last.ckpt"
    kept = "the checkpoints written so far are untouched" if last.is_file() else "no checkpoint was written yet"
    then = "continue with resume=last" if last.is_file() else "start the run again"
    path = Path(error.filename) if error.filename else run_dir / "logs"
    return no_space_error(path, None, f"{path.name} of run {run_dir}", kept, then)


def _save_encoder_or_explain(exported: torch.nn.Module, path: Path, info: dict[str, Any]) -> Path:
    """``save_encoder``; a full disk is one clear error that says the checkpoints are kept and how to write the
    encoder from them, and no temporary file is left."""
    try:
        return save_encoder(exported, path, info)
    except Exception as e:
        needed = sum(t.numel() * t.element_size() for t in exported.state_dict().values())
        if not out_of_space(e, path.parent, needed):
            raise
        for leftover in (path.with_name(f".{path.name}.tmp"), path.with_suffix(".json")):
            if leftover.is_file() and not path.is_file():
                leftover.unlink()
        last = path.parent / "checkpoints" / "last.ckpt"
        then = f"write it with `contrastkit export {last} --out {path}`"
        raise no_space_error(path, needed, path.name, f"training finished and {last} is kept", then) from None


def _process_group_running() -> bool:
    """Whether a ``torch.distributed`` default process group exists in this process (``is_initialized`` is only
    defined on builds with distributed support)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


# process groups train() started and destroyed in this process: a later run joins torchrun's store on new keys
_groups_ended = 0


def _end_process_group() -> None:
    """Destroy the default process group, counted in ``_groups_ended``."""
    global _groups_ended
    torch.distributed.destroy_process_group()
    _groups_ended += 1


@contextlib.contextmanager
def _process_group_ended_if_started() -> Iterator[None]:
    """Destroy, on the way out, a process group that did not exist on the way in: the one Lightning's DDP strategy
    (or :func:`~contrastkit.train.run_folder.connect_restarted_job`) started, which Lightning never destroys. Left
    alive, its communication threads outlive the run in a caller's script (gloo aborted a finished process at exit
    once in many runs: exit code -6 after a whole run). A group the caller had started is the caller's and stays.
    """
    caller_had_one = _process_group_running()
    try:
        yield
    except BaseException:
        if not caller_had_one and _process_group_running():
            with contextlib.suppress(Exception):  # the run's own error is the one to report
                _end_process_group()
        raise
    if not caller_had_one and _process_group_running():
        _end_process_group()


def train(config: RunConfig, callbacks: Sequence[pl.Callback] = ()) -> TrainResult:
    """Train ``config``'s method; write checkpoints, logs, the encoder file and the final evaluation.

    Any kind of run (the :class:`~contrastkit.train.tasks.Task` its method names: images, image-text, text pairs)
    goes the same way. The run folder (``config.run_dir``) gets ``config.json``, ``checkpoints/last.ckpt`` (every
    epoch, written atomically; ``checkpoints/interrupted.ckpt`` on Ctrl-C or a crash), ``logs/metrics.csv``,
    ``encoder.safetensors`` (+ ``encoder.json``) and ``final_eval.json``. ``callbacks`` are extra Lightning callbacks
    (run before the checkpointing).

    A ``torch.distributed`` process group the run started (a DDP strategy) is destroyed when it returns or fails;
    one that existed before the call (started by the caller) is left as it is.
    """
    with _process_group_ended_if_started():  # around everything: the final evaluation runs before the group ends
        return _train(config, callbacks)


def _train(config: RunConfig, callbacks: Sequence[pl.Callback]) -> TrainResult:
    """:func:`train` inside the process group it may start."""
    config, restarted = continue_after_restart(config)
    # a restart (even one resuming an explicit checkpoint, when ``restarted`` is None) and a later run in the same
    # torchrun script need their own rendezvous keys; the function does nothing otherwise
    connect_restarted_job(config.trainer.accelerator, _groups_ended)
    if restarted and rank_zero_only.rank == 0:
        print(restarted, flush=True)
    task = get_task(get_method(config.method["name"]).task)(config)
    run_dir = config.run_dir
    resume = resolve_resume(config)  # before anything is read or written
    first = rank_zero_only.rank == 0  # other processes find the run folder rank 0 has just started: not an earlier run
    if first:
        refuse_earlier_run(config)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    task.setup()  # reads the data, builds the method; refuses what cannot train
    check_grad_cache(config, task.method)
    # the random-init (or pretrained) baseline of the final evaluation: a copy only when there will be one
    initial = copy.deepcopy(task.method) if config.final_eval.enabled else None
    info = task.encoder_info()
    module = task.lit_module(info)
    if resume is not None:
        check_resume(resume, config, module)  # a checkpoint that does not fit is refused before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = run_dir / "checkpoints"
    trainer: pl.Trainer | None = None
    try:
        if first:  # one process writes: another would make rank 0 see an earlier run that is this one
            remove_earlier_run(config)
            (run_dir / "config.json").write_text(json.dumps(config_to_dict(config), indent=2) + "\n", encoding="utf-8")
        remove_stale_temporaries(checkpoints)
        throughput = ThroughputMonitor(batch_size_fn=batch_rows)  # samples/s in logs/metrics.csv (train|...)
        all_callbacks = [*task.callbacks(), throughput, *callbacks, *checkpoint_callbacks(checkpoints, config.trainer)]
        trainer = build_trainer(config, all_callbacks, _loggers(run_dir, resume is not None))
        with known_lightning_warnings_silenced():
            trainer.fit(module, datamodule=task.data, ckpt_path=resume)
    except BaseException as e:
        if first and resume is None and (trainer is None or trainer.global_step == 0):
            remove_outputs(run_dir)  # a failed start: nothing of it may block the corrected command
        if isinstance(e, OSError) and _is_unexplained_full_disk(e):
            raise _full_disk_while_training(e, run_dir) from None
        raise
    task.after_fit()
    if not trainer.is_global_zero:
        return TrainResult(run_dir, None, checkpoints / "last.ckpt", task.history(), None)
    exported, _ = task.method.export_module()
    encoder = _save_encoder_or_explain(exported, run_dir / "encoder.safetensors", info)
    final = task.evaluate(initial) if config.final_eval.enabled else None
    if final is not None:
        (run_dir / "final_eval.json").write_text(json.dumps(final.scores, indent=2) + "\n", encoding="utf-8")
        print(final.table)
    return TrainResult(run_dir, encoder, checkpoints / "last.ckpt", task.history(), final and final.scores)


__all__ = ["TrainResult", "build_trainer", "check_grad_cache", "train"]
