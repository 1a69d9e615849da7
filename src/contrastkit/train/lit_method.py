"""The Lightning adapter: any :class:`~contrastkit.methods.Method` as a ``LightningModule``.

Lightning supplies the loop, DDP over devices and nodes, mixed precision, gradient accumulation, checkpointing and
logging; this adapter only turns a batch of uint8 images into views (batched engine, on the training device),
calls the method, schedules the learning rate and keeps the method's schedules (EMA momentum, DINO temperatures)
informed of the progress. Checkpoints also carry the RNG states, so a resumed run draws the same views.

With gradient caching (``grad_cache_chunk_size > 0``) the adapter optimises manually (Lightning's automatic loop
backpropagates one loss once) and does itself what Lightning would: gradient accumulation, clipping, the method's
optimiser-step hooks, the per-step learning-rate schedule and the same logging.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor, nn

from contrastkit.data.class_captions import ClassCaptions
from contrastkit.losses.validation import NonFiniteError
from contrastkit.methods import Method, Progress
from contrastkit.optim.grad_cache import GradCache, average_gradients
from contrastkit.optim.warmup_cosine import SchedulePlan, WarmupCosine, plan_schedule
from contrastkit.train.build_optimizer import build_optimizer, build_scheduler
from contrastkit.train.config import OptimConfig
from contrastkit.train.loop_state import continue_after_epoch_end
from contrastkit.views import MultiViews


class NonFiniteLossError(RuntimeError):
    """Training met a NaN or inf loss (``trainer.on_nonfinite``): the step, the loss's parts and the usual causes."""


COMPILE_BACKEND = "inductor"  # torch.compile's default code generator (the tests swap in a quick one)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) RNG states, as types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002  (the legacy global state)
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "gauss": [has_gauss, gauss],
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def view_seed(seed: int, rank: int, epoch: int, batch_idx: int) -> int:
    """The seed of one batch's views on one process: a hash of the run's seed, the process's rank, the epoch and the
    batch index. Every process draws its own views (all processes start from the same global seed, so drawing from
    the global RNG would give rank r's i-th image exactly rank 0's i-th crop), and a resumed run, even mid-epoch,
    draws the same views as an uninterrupted one without any generator state in the checkpoint."""
    digest = hashlib.blake2b(f"{seed}:{rank}:{epoch}:{batch_idx}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # a non-negative 63-bit seed


def data_position(trainer: pl.Trainer) -> dict[str, int]:
    """Where the training data stream stands: the epoch and how many of its batches were trained on (a batch
    whose step had not finished when a checkpoint was written on a crash is not counted: Lightning replays it).
    A mid-epoch resume starts the sampler after these batches (see :class:`ShardedBatchSampler`)."""
    batches = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    return {"epoch": int(trainer.current_epoch), "batches": int(batches)}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["gauss"][0], n["gauss"][1]))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class LitMethod(pl.LightningModule):
    """Trains ``method`` on batches ``(images uint8 (B, C, H, W), targets (B,))`` with ``views`` drawn per batch.

    Args:
        method: the method (backbone, heads and loss).
        views: the views recipe; ``views.batch`` runs on the batch's device. None: the batch itself is the only
            view (already float, e.g. sequences for CPC).
        optim: optimiser and schedule settings.
        info: the encoder metadata (backbone name, channels, normalisation, the run's config), stored in every
            checkpoint so ``contrastkit export`` can rebuild the encoder from a checkpoint alone.
        use_labels: pass the batch's targets to the method (class ids for SupCon, texts for CLIP).
        grad_cache_chunk_size: > 0: embed each batch in chunks of this many samples and backpropagate with
            :class:`~contrastkit.optim.grad_cache.GradCache` (manual optimisation); 0: Lightning's automatic step.
        accumulate_grad_batches: with grad caching, step the optimiser every k batches (loss scaled 1/k), as
            ``Trainer(accumulate_grad_batches=k)`` does in the automatic mode (which Lightning refuses in manual mode).
        gradient_clip_val: with grad caching, clip the gradient norm to this value (``Trainer(gradient_clip_val)``).
        channels_last: keep the method's 4-D weights and the views in the channels-last (NHWC) memory layout,
            which convolutions run faster in on CPUs (oneDNN) and on GPUs under mixed precision; the numbers are
            the same up to float rounding.
        seed: the run's seed; each batch's views are drawn from :func:`view_seed` of it, the process's rank, the
            epoch and the batch index.
        captions: turns a batch's class ids into captions (image-text methods on labelled images), its templates
            drawn after the views from the same per-batch generator.
        on_nonfinite: a NaN or inf loss (or loss input): ``"stop"`` with :class:`NonFiniteLossError` naming the step,
            the loss's parts and the usual causes, or ``"skip"`` the batch (no update), at most ``nonfinite_limit``
            times. Costs one host sync per step (the loss is read).
        freeze_batchnorm: keep the backbone's batch-norm layers in evaluation mode while training: they normalise
            with their running statistics (a pretrained network's) and never update them; their scale and shift
            still learn. For continuing from ``backbone.pretrained`` on data unlike its pretraining data, where
            statistics re-estimated on the new data cost the features more than they bring (benchmarks/RESULTS.md).
        compile_backbone: ``torch.compile`` the backbone in place (``nn.Module.compile``: its parameters, state dict
            and checkpoint keys stay those of the eager module) when the trainer sets the model up.
    """

    def __init__(
        self,
        method: Method,
        views: MultiViews | None,
        optim: OptimConfig,
        info: dict[str, Any] | None = None,
        use_labels: bool = False,
        grad_cache_chunk_size: int = 0,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: float | None = None,
        channels_last: bool = False,
        seed: int = 0,
        captions: ClassCaptions | None = None,
        on_nonfinite: str = "stop",
        nonfinite_limit: int = 10,
        freeze_batchnorm: bool = False,
        compile_backbone: bool = False,
    ) -> None:
        super().__init__()
        if on_nonfinite not in ("stop", "skip"):
            raise ValueError(f"on_nonfinite must be 'stop' or 'skip', got {on_nonfinite!r}")
        self.on_nonfinite, self.nonfinite_limit, self.nonfinite_skipped = on_nonfinite, int(nonfinite_limit), 0
        self.seed = int(seed)
        self.flops_per_batch = None  # not counted (Lightning's ThroughputMonitor logs samples/s without it)
        self.captions = captions
        self.channels_last = bool(channels_last) and views is not None
        if self.channels_last:
            method.to(memory_format=torch.channels_last)
        self.method = method
        self.views = views
        self.optim = optim
        self.info = info or {}
        self.use_labels = use_labels
        if grad_cache_chunk_size < 0 or accumulate_grad_batches < 1:
            raise ValueError(
                f"grad_cache_chunk_size must be >= 0 and accumulate_grad_batches >= 1, got {grad_cache_chunk_size} "
                f"and {accumulate_grad_batches}"
            )
        self.grad_cache = GradCache(method, grad_cache_chunk_size) if grad_cache_chunk_size > 0 else None
        self.accumulate_grad_batches = accumulate_grad_batches
        self.gradient_clip_val = gradient_clip_val
        if self.grad_cache is not None:
            self.automatic_optimization = False
        self._plan: SchedulePlan | None = None  # set by configure_optimizers
        self.freeze_batchnorm = bool(freeze_batchnorm)
        self.compile_backbone = bool(compile_backbone)
        self._base_lrs: list[float] = []  # the current settings' learning rate of each parameter group (optim.lr
        # scaled to the global batch, times optim.backbone_lr_ratio for the backbone's)

    def configure_model(self) -> None:
        """Compile the backbone once the trainer has set the module up (``trainer.compile``)."""
        if self.compile_backbone and not getattr(self.method.backbone, "_compiled_call_impl", None):
            self.method.backbone.compile(backend=COMPILE_BACKEND)

    def forward(self, x: Tensor) -> Tensor:
        return self.method.embed(x)

    def _keep_frozen_norms(self) -> None:
        """``freeze_batchnorm``: the backbone's batch-norm layers back in eval mode (found each time: SyncBatchNorm
        may have replaced them, and whatever set the method to train mode, the monitor's restore included, set
        them too)."""
        if self.freeze_batchnorm:
            for module in self.method.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._keep_frozen_norms()

    def _accumulate(self) -> int:
        """Batches per optimiser step: the trainer's in the automatic mode, ours with grad caching."""
        return self.accumulate_grad_batches if self.grad_cache is not None else self.trainer.accumulate_grad_batches

    def schedule_plan(self) -> SchedulePlan:
        """The run's optimiser steps (whichever of ``max_epochs`` / ``max_steps`` ends it, with accumulation and any
        number of processes) and its warm-up, from the training data the trainer has set up."""
        trainer = self.trainer
        trainer.estimated_stepping_batches  # noqa: B018  (sets up the training data when needed)
        batches = trainer.num_training_batches
        if batches == float("inf"):  # no length: the run is as long as max_steps says
            batches = max(trainer.max_steps, 1)
        max_steps = trainer.max_steps if trainer.max_steps is not None else -1
        return plan_schedule(
            self.optim.warmup_epochs, int(batches), self._accumulate(), max(trainer.max_epochs or 1, 1), max_steps
        )

    def _progress(self, batch_idx: int) -> Progress:
        trainer = self.trainer
        total = self._plan.total_steps if self._plan is not None else self.schedule_plan().total_steps
        batches = trainer.num_training_batches
        fraction = batch_idx / batches if isinstance(batches, int) and batches > 0 else 0.0
        return Progress(step=int(trainer.global_step), total_steps=total, epoch=trainer.current_epoch + fraction)

    def training_step(self, batch: tuple[Any, Any], batch_idx: int) -> Tensor | None:
        images, targets = batch  # uint8 (B, C, H, W) images (or B texts), class ids (B,) or B texts
        if len(images) < 2:  # all but one image (or all) unreadable, skipped and counted: no step (one sample has
            return None  # no negatives, and the heads' BatchNorm cannot train on it)
        self.method.set_progress(self._progress(batch_idx))
        generator = torch.Generator().manual_seed(view_seed(self.seed, self.global_rank, self.current_epoch, batch_idx))
        views = [images] if self.views is None else self.views.batch(images, generator)  # V x (B, C, S, S) float32
        if self.captions is not None:
            targets = self.captions(targets, generator)  # class ids (B,) -> B captions
        if self.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        labels = targets if self.use_labels else None
        out, problem = None, None
        try:
            if self.grad_cache is None:
                out = self.method(views, labels)
            else:  # forward and backward of the whole batch, chunk by chunk (the loss scaled 1/k, as Lightning does)
                k = self.accumulate_grad_batches
                out = self.grad_cache(views, labels, backward=lambda loss: self.manual_backward(loss / k))
        except NonFiniteError as e:
            problem = str(e)
        if out is not None and not bool(torch.isfinite(out.loss.detach())):
            problem = f"the loss is {float(out.loss.detach())}"
        if self.on_nonfinite == "skip" and torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor(float(problem is not None), device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)  # every process skips together
            problem = problem or ("another process's loss was not finite" if flag.item() else None)
        if problem is not None:
            return self._nonfinite(problem, out)
        batch_size = len(images)
        for name, value in out.metrics.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=batch_size, sync_dist=True)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=batch_size)
        if self.grad_cache is not None:
            self._manual_optimizer_step(batch_idx)
        return out.loss

    def _nonfinite(self, problem: str, out: Any) -> None:
        """Stop with the step, the loss's parts and the usual causes, or skip the batch (``on_nonfinite``)."""
        parts = ", ".join(f"{k} {float(v):.4g}" for k, v in out.metrics.items()) if out is not None else ""
        message = (
            f"step {self.trainer.global_step}: {problem}{f' ({parts})' if parts else ''}. Usual causes: a learning "
            "rate too high (optim.lr), a temperature too low, fp16 overflow (trainer.precision=bf16-mixed or 32-true) "
            "or bad inputs"
        )
        if self.on_nonfinite == "stop":
            raise NonFiniteLossError(f"{message}; trainer.on_nonfinite=skip skips such batches")
        self.nonfinite_skipped += 1
        if self.nonfinite_skipped > self.nonfinite_limit:
            raise NonFiniteLossError(
                f"{message}; {self.nonfinite_skipped} batches skipped, more than trainer.nonfinite_limit="
                f"{self.nonfinite_limit}"
            )
        if self.trainer.is_global_zero:
            print(f"contrastkit: skipped batch {self.nonfinite_skipped} of at most {self.nonfinite_limit}: {message}")
        return None

    def _manual_optimizer_step(self, batch_idx: int) -> None:
        """What Lightning's automatic loop does after backward: step every k batches (and at the end of the
        epoch), clip (in :meth:`on_before_optimizer_step`, after AMP unscaling), the method's hooks, zero the
        gradients, step the per-step learning-rate schedule."""
        batches = self.trainer.num_training_batches
        last = isinstance(batches, int) and batch_idx + 1 >= batches
        if (batch_idx + 1) % self.accumulate_grad_batches != 0 and not last:
            return
        optimizer = self.optimizers()
        if self.trainer.world_size > 1:  # DDP's backward synchronisation is off (see on_train_start): average here
            average_gradients(self.method.parameters())
        optimizer.step()  # runs on_before_optimizer_step: method.before_optimizer_step, then clipping
        optimizer.zero_grad()
        self.method.after_optimizer_step()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()

    def on_train_start(self) -> None:
        """A resumed run's schedule follows the current settings (see :meth:`_follow_current_budget`).

        With grad caching over several processes, DDP must not all-reduce in each of the many backward passes of
        a step: its synchronisation is switched off and the gradients are averaged once per optimiser step."""
        self._follow_current_budget()
        if self.grad_cache is None or self.trainer.world_size == 1:
            return
        from torch.nn.parallel import DistributedDataParallel

        model = self.trainer.strategy.model
        if not isinstance(model, DistributedDataParallel):
            raise ValueError(
                f"trainer.grad_cache_chunk_size with {self.trainer.world_size} processes needs the ddp strategy "
                f"(trainer.strategy=ddp), got {type(model).__name__}"
            )
        model.require_backward_grad_sync = False

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "set_epoch"):  # a stream's shuffle order (Lightning sets samplers' epochs only)
            datamodule.set_epoch(self.current_epoch)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.method.before_optimizer_step()
        if self.grad_cache is not None and self.gradient_clip_val:  # Lightning clips only in the automatic mode
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        self.method.after_optimizer_step()

    def configure_optimizers(self) -> dict[str, Any]:
        trainer = self.trainer
        loader_batch = trainer.datamodule.batch_size if trainer.datamodule is not None else 256
        global_batch = loader_batch * trainer.world_size * self._accumulate()
        optimizer = build_optimizer(self.method, self.optim, global_batch)
        self._plan = self.schedule_plan()
        self._base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        if self._plan.note and trainer.is_global_zero:
            print(self._plan.note)
        return {"optimizer": optimizer, "lr_scheduler": build_scheduler(optimizer, self.optim, self._plan)}

    def _follow_current_budget(self) -> None:
        """A resumed run gets the old run's schedule and base learning rate from its checkpoint; the run that now
        continues ends where the current settings say (``max_epochs``, ``max_steps``, batch size, processes): the
        schedule is redefined over it at the step reached, with one printed line when that changes anything."""
        scheduler = self.lr_schedulers()
        if self._plan is None or not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            return
        schedule, step = scheduler.lr_lambdas[0], scheduler.last_epoch
        if not isinstance(schedule, WarmupCosine):
            return
        saved = (schedule.warmup_steps, schedule.total_steps, [float(lr) for lr in scheduler.base_lrs])
        current = (self._plan.warmup_steps, self._plan.total_steps, list(self._base_lrs))
        if len(current[2]) != len(saved[2]):  # refused before this by the checkpoint's settings check
            raise ValueError("resume: the optimiser has another number of parameter groups than the checkpoint's")
        if saved == current:
            return
        schedule.warmup_steps, schedule.total_steps = current[0], current[1]
        scheduler.base_lrs = list(current[2])
        for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, strict=True):
            group["initial_lr"], group["lr"] = base, base * schedule(step)
        if self.trainer.is_global_zero:
            print(
                f"contrastkit: resumed at optimiser step {step} with changed settings: the schedule now runs to "
                f"step {current[1]} (was {saved[1]}), warm-up {current[0]} steps, base learning rate "
                f"{current[2][0]:.4g} (was {saved[2][0]:.4g}); learning rate now "
                f"{scheduler.optimizer.param_groups[0]['lr']:.4g}"
            )

    def encoder_keys(self) -> dict[str, str]:
        """Where each of the exported module's weights sits in this module's state dict (``{"conv.weight":
        "method.backbone.conv.weight"}``): matched by tensor identity, so export reads a checkpoint without knowing
        the method's attribute names, and a module the method builds on export (CPC's context encoder) works too."""
        exported = self.method.export_module()[0]
        ours = {id(t): name for name, t in self.state_dict(keep_vars=True).items()}
        keys = {name: ours.get(id(t)) for name, t in exported.state_dict(keep_vars=True).items()}
        missing = [name for name, key in keys.items() if key is None]
        if missing:
            raise ValueError(
                f"{type(self.method).__name__}.export_module() holds weights outside the method: {missing}"
            )
        return keys

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["contrastkit"] = {
            "info": self.info,
            "rng": rng_state(),
            "encoder_keys": self.encoder_keys(),
            "data_position": data_position(self.trainer),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("contrastkit", {})
        continue_after_epoch_end(checkpoint)  # before Lightning restores its loops from the checkpoint
        self.resume_position = saved.get("data_position")  # read by the batch sampler (mid-epoch resume)
        if "rng" in saved:
            set_rng_state(saved["rng"])
