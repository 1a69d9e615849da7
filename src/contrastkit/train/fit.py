"""``train(config)``: a validated :class:`RunConfig` to a trained, exported and evaluated encoder, on Lightning."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from contrastkit.backbones import create_backbone, save_encoder
from contrastkit.methods import Method, create_method
from contrastkit.train.checkpoint_io import AtomicCheckpointIO
from contrastkit.train.config import ConfigError, RunConfig, config_to_dict
from contrastkit.train.data_module import RunDataModule
from contrastkit.train.lit_method import LitMethod
from contrastkit.train.monitor import EmbeddingMonitor
from contrastkit.views import MultiViews
from contrastkit.views.registry import get_views


class InterruptCheckpoint(pl.Callback):
    """Saves ``path`` when training stops on an exception or Ctrl-C (the epoch checkpoints stay untouched).

    Unlike Lightning's ``OnExceptionCheckpoint`` it does not make ``fit`` resume from it implicitly: a run resumes
    only when ``resume`` says so.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        trainer.save_checkpoint(self.path)


@dataclass
class TrainResult:
    """Where a run's outputs are, and its numbers."""

    run_dir: Path  # the run folder
    encoder: Path | None  # encoder.safetensors (None on processes other than rank 0)
    checkpoint: Path | None  # the last checkpoint
    monitor: list[dict[str, float]]  # per-epoch monitor metrics
    final_eval: dict[str, Any] | None  # kNN / linear probe table, when enabled and labelled data exists


def build_views(config: RunConfig, channels: int, image_size: int) -> MultiViews:
    """The views recipe of ``config.views``; ``input_size``/``channels`` of 0 mean the data's own."""
    params = dict(config.views)
    cls = get_views(params.pop("recipe"))
    if params.get("input_size", 0) == 0:
        params["input_size"] = image_size
    if params.get("channels", 0) == 0:
        params["channels"] = channels
    return cls(**params)


def build_method(config: RunConfig, in_chans: int) -> Method:
    """The backbone of ``config.backbone`` (or the pretrained one it names) inside the method of ``config.method``."""
    params = dict(config.method)
    if config.backbone.pretrained:
        backbone = pretrained_backbone(config.backbone.pretrained, in_chans)
    else:
        backbone = create_backbone(config.backbone.name, in_chans=in_chans, small_input=config.backbone.small_input)
    return create_method(params.pop("name"), backbone, **params)


def pretrained_backbone(path: str, in_chans: int) -> torch.nn.Module:
    """The image backbone of encoder file ``path`` (of a clip run: its image tower), in training mode."""
    import contrastkit

    encoder = contrastkit.load_encoder(path)
    if int(encoder.encoder_info["in_chans"]) != in_chans:
        raise ConfigError(
            f"backbone.pretrained: {path} takes {encoder.encoder_info['in_chans']}-channel images and the views have "
            f"{in_chans}; set views.channels={encoder.encoder_info['in_chans']}"
        )
    backbone = encoder.image_encoder if encoder.encoder_info.get("kind") == "dual" else encoder
    return backbone.train()


def check_grad_cache(config: RunConfig, method: Method) -> None:
    """Refuse ``trainer.grad_cache_chunk_size > 0`` for a method without ``embed_batch``/``loss_from_embeddings``."""
    if config.trainer.grad_cache_chunk_size > 0 and not type(method).supports_grad_cache:
        from contrastkit.train.grad_cache import available_methods

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
        yield


def checkpoint_callbacks(checkpoints: Path) -> list[pl.Callback]:
    """``last.ckpt`` at the end of every epoch (one file, replaced atomically, see AtomicCheckpointIO) and
    ``interrupted.ckpt`` on a crash or Ctrl-C."""
    last = ModelCheckpoint(
        dirpath=checkpoints,
        filename="last",
        save_top_k=1,
        enable_version_counter=False,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
    )
    return [last, InterruptCheckpoint(checkpoints / "interrupted.ckpt")]


def encoder_info(config: RunConfig, views: MultiViews, in_chans: int) -> dict[str, Any]:
    """The metadata stored with an exported encoder (how to rebuild it and how to feed it)."""
    spec = views.specs[0]
    architecture = {"backbone": config.backbone.name, "small_input": config.backbone.small_input}
    if config.backbone.pretrained:  # the architecture of the file it started from
        from contrastkit.backbones.encoder_file import read_encoder_info

        start = read_encoder_info(config.backbone.pretrained)
        architecture = {k: start[k] for k in ("backbone", "small_input", "backbone_kwargs") if k in start}
        architecture["pretrained"] = str(config.backbone.pretrained)
    return {
        **architecture,
        "in_chans": in_chans,
        "input_size": spec.size,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "method": config.method["name"],
        "config": config_to_dict(config),
    }


def train(config: RunConfig, callbacks: Sequence[pl.Callback] = ()) -> TrainResult:
    """Train ``config``'s method; write checkpoints, logs, ``encoder.safetensors`` and the final evaluation.

    The run folder (``config.run_dir``) gets ``config.json``, ``checkpoints/last.ckpt`` (every epoch, written
    atomically; ``checkpoints/interrupted.ckpt`` on Ctrl-C or a crash), ``logs/metrics.csv``, ``encoder.safetensors``
    (+ ``encoder.json``) and ``final_eval.json``. ``callbacks`` are extra Lightning callbacks (run before the
    checkpointing).
    """
    if config.views is None:  # a text-only method (text pairs)
        from contrastkit.train.fit_text import train_text

        return train_text(config, callbacks)
    run_dir = config.run_dir
    resume = resolve_resume(config)  # before anything is read or written
    pl.seed_everything(config.seed, workers=True, verbose=False)
    data = RunDataModule(config.data, config.seed, config.monitor.bank_size, config.monitor.query_size)
    views = build_views(config, data.channels, data.image_size)
    method = build_method(config, in_chans=views.specs[0].channels)
    if method.uses_labels and not data.classes:
        raise ValueError(f"method {config.method['name']!r} needs labelled data, and {data.describe()} has no labels")
    if method.uses_captions and not data.has_captions:
        raise ValueError(
            f"method {config.method['name']!r} trains on image-text pairs, and {data.describe()} has no captions: "
            "give data.path an image-caption listing (.csv/.jsonl with image and caption columns), or labelled data "
            "with data.caption_templates (e.g. ['a photo of a {}.'])"
        )
    check_grad_cache(config, method)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config_to_dict(config), indent=2) + "\n")
    exported, export_info = method.export_module()
    info = {**encoder_info(config, views, views.specs[0].channels), **export_info}
    t = config.trainer
    module = LitMethod(
        method,
        views,
        config.optim,
        info,
        use_labels=method.uses_labels or method.uses_captions,
        grad_cache_chunk_size=t.grad_cache_chunk_size,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        channels_last=t.channels_last,
        seed=config.seed,
    )
    spec = views.specs[0]
    monitor = EmbeddingMonitor(
        config.monitor, data.bank, data.queries, data.health_images(), spec.mean, spec.std, spec.size
    )
    checkpoints = run_dir / "checkpoints"
    callbacks = [monitor, *callbacks, *checkpoint_callbacks(checkpoints)]
    trainer = build_trainer(config, callbacks, _loggers(run_dir, resume is not None))
    with known_lightning_warnings_silenced():
        trainer.fit(module, datamodule=data, ckpt_path=resume)
    if data.skips.count:
        print(data.skips.summary(total=len(data.train_indices)))
    if not trainer.is_global_zero:
        return TrainResult(run_dir, None, checkpoints / "last.ckpt", monitor.history, None)
    encoder = save_encoder(exported, run_dir / "encoder.safetensors", info)
    final = None
    if config.final_eval.enabled and (data.bank is not None or data.has_captions):
        from contrastkit.train.final_eval import final_evaluation, format_table

        final = final_evaluation(config, data, method, views)
        (run_dir / "final_eval.json").write_text(json.dumps(final, indent=2) + "\n")
        print(format_table(final))
    return TrainResult(run_dir, encoder, checkpoints / "last.ckpt", monitor.history, final)


__all__ = ["TrainResult", "build_method", "build_trainer", "build_views", "check_grad_cache", "train"]
