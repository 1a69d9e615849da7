"""The run configuration: small typed dataclasses, one comment per field, validated before any data is read.

A run is described by a YAML recipe (built-in name or file) plus ``key=value`` overrides
(``trainer.max_epochs=5 data.path=~/images``). :func:`load_config` merges them onto the typed schema with OmegaConf
and refuses, before training starts, an unknown key (naming the closest valid one), a value of the wrong type
(naming the key and the expected type) and an out-of-range value. The ``method`` and ``views`` sections are typed
from the constructor signature of the chosen method and views recipe, so every parameter they take is a valid key
and nothing else is.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contrastkit.train.config_schema import (
    ConfigError,
    check_guide,
    check_method_values,
    check_pretrained,
    check_range,
    component_schema,
    hint,
    merge,
    to_kwargs,
)

PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "64-true")
DECODE_PLACES = ("workers", "device")  # data.decode: where a folder's JPEGs are decoded
OPTIMIZERS = ("sgd", "adamw", "lars")


@dataclass
class BackboneConfig:
    name: str = "small_cnn"  # a name from contrastkit.backbones.list_backbones()
    small_input: bool = False  # CIFAR-style stem for small images (ResNets), 4x4 patches for 32x32 ViTs
    pretrained: str | None = None  # an encoder file (train / export / import-encoder) to start from: its backbone
    # (architecture and weights) replaces name and small_input
    freeze_batchnorm: bool = False  # with pretrained: its batch-norm layers keep their running statistics (eval
    # mode) while everything learns; statistics re-estimated on unlike data cost its features 10-20 probe points
    max_length: int = 128  # text encoders (text-pairs): tokens per text, longer texts truncated (MiniLM's training
    # length; captions need far fewer)

    def __post_init__(self) -> None:
        check_range("backbone.max_length", self.max_length, low=2)  # the special tokens alone take two
        if self.freeze_batchnorm and not self.pretrained:
            raise ConfigError(
                "backbone.freeze_batchnorm keeps a pretrained network's batch-norm statistics: set "
                "backbone.pretrained=FILE (an encoder file) too"
            )


@dataclass
class DataConfig:
    name: str = "fashion-mnist"  # built-in data set (contrastkit.data.list_datasets()), used when path is unset
    path: str | None = None  # your own images: a folder (class sub-folders optional), listing or .tar shards
    test_path: str | None = None  # text pairs: a held-out pairs file scored before / after training (None: hold
    # final_eval.test_size pairs out of path); keep it apart from what mine-negatives saw
    root: str | None = None  # where built-in data sets are stored (default $CONTRASTKIT_DATA or ~/.cache)
    download: bool = False  # let a built-in data set download missing files
    image_size: int | None = None  # path data: images are resized (shorter side) and centre-cropped to this
    # (None: the images' own shorter side, probed on the first ones, at most 256)
    channels: int | None = None  # 1 or 3 channels for the views (None: the data set's own; a folder's: 1 when its
    # images are grayscale)
    batch_size: int = 256  # images per process per step (the global batch is this x processes x nodes)
    num_workers: int | None = None  # DataLoader worker processes per training process (0 = load in the main
    # process; None: the CPU cores this process may use, shared among the node's training processes)
    decode: str = "workers"  # where a folder's JPEGs are decoded: "workers" (DataLoader workers, CPU) or "device"
    # (the training device, one batched call per batch: nvJPEG on a GPU; other files still in the workers)
    length_grouping: int = 0  # text pairs: batches of similar length (less padding), sorted within windows of this
    # many global batches (0: off; batches stay random mixtures of the data either way)
    train_fraction: float = 1.0  # use this fraction of the training set (a fixed random subset), for quick runs
    classes: list[str] = field(default_factory=list)  # train on these classes only (names); [] = all of them
    caption_templates: list[str] = field(default_factory=list)  # image-text methods on labelled images: each
    # image's caption is one of these templates, drawn at random, filled with its class name ("a photo of a {}.")
    class_wording: dict[str, str] = field(default_factory=dict)  # words that stand for a class in captions and
    # zero-shot prompts ({"Sneaker": "sneaker, a sports shoe"}), over the data set's own (Fashion-MNIST has them);
    # classes worded nowhere read as their names

    def __post_init__(self) -> None:
        if self.batch_size < 2:  # a contrastive loss needs other samples; BatchNorm needs two values per channel
            raise ConfigError(
                f"data.batch_size must be >= 2 (a batch's other samples are its negatives), got {self.batch_size}"
            )
        if self.num_workers is not None:
            check_range("data.num_workers", self.num_workers, low=0)
        if self.decode not in DECODE_PLACES:
            raise ConfigError(
                f"data.decode must be one of {', '.join(DECODE_PLACES)}, got {self.decode!r}"
                f"{hint(self.decode, DECODE_PLACES)}"
            )
        check_range("data.length_grouping", self.length_grouping, low=0)
        if self.image_size is not None:
            check_range("data.image_size", self.image_size, low=1)
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"data.channels must be 1 or 3 (or null: the data's own), got {self.channels}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ConfigError(f"data.train_fraction must be in (0, 1], got {self.train_fraction}")
        for template in self.caption_templates:
            if template.count("{}") != 1:
                raise ConfigError(
                    f"data.caption_templates: {template!r} must have exactly one '{{}}' where the class name goes"
                )
        for name, words in self.class_wording.items():
            if not str(words).strip():
                raise ConfigError(f"data.class_wording.{name} is empty: give the words captions should use for it")
        self.classes, self.caption_templates = list(self.classes), list(self.caption_templates)
        self.class_wording = dict(self.class_wording)


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd, adamw or lars
    lr: float = 0.06  # learning rate at a global batch of 256, scaled linearly with the global batch
    weight_decay: float = 5e-4  # decoupled for adamw; biases and norm parameters are excluded
    momentum: float = 0.9  # sgd and lars momentum
    betas: tuple[float, float] = (0.9, 0.999)  # adamw betas
    warmup_epochs: float = 0.0  # linear warm-up from 0, then cosine decay to min_lr_ratio * lr
    min_lr_ratio: float = 0.0  # final learning rate as a fraction of the peak
    lars_eta: float = 0.001  # LARS trust coefficient (You et al. 2017)
    exclude_bias_and_norm: bool = True  # no weight decay (nor LARS adaptation) on biases and norm layers
    backbone_lr_ratio: float = 1.0  # the backbone's learning rate as a fraction of lr (heads and predictors learn at
    # lr): below 1 when continuing from backbone.pretrained, so new heads move fast and the pretrained features slowly

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(
                f"optim.name must be one of {', '.join(OPTIMIZERS)}, got {self.name!r}{hint(self.name, OPTIMIZERS)}"
            )
        check_range("optim.lr", self.lr, low=0.0, strict=True)
        check_range("optim.weight_decay", self.weight_decay, low=0.0)
        check_range("optim.warmup_epochs", self.warmup_epochs, low=0.0)
        check_range("optim.min_lr_ratio", self.min_lr_ratio, low=0.0, high=1.0)
        check_range("optim.momentum", self.momentum, low=0.0, high=1.0)
        check_range("optim.lars_eta", self.lars_eta, low=0.0, strict=True)
        check_range("optim.backbone_lr_ratio", self.backbone_lr_ratio, low=0.0, high=1.0, strict=True)
        self.betas = tuple(self.betas)
        for i, beta in enumerate(self.betas):
            check_range(f"optim.betas[{i}]", beta, low=0.0, high=1.0)


@dataclass
class TrainerConfig:
    max_epochs: int = 100  # epochs to train
    max_steps: int = -1  # stop after this many optimiser steps (-1: no limit)
    accelerator: str = "auto"  # cpu, gpu, mps or auto
    devices: str = "auto"  # "auto", a count ("2") or a list of ids ("0,1")
    num_nodes: int = 1  # machines, each running `devices` processes
    strategy: str = "auto"  # auto, ddp, ddp_spawn, fsdp, ... (Lightning strategies); ddp when devices > 1
    precision: str = "32-true"  # 32-true, bf16-mixed or 16-mixed (similarities stay float32 in the losses)
    accumulate_grad_batches: int = 1  # optimiser step every k batches (not a larger negative set: use gathering)
    gradient_clip_val: float | None = None  # clip the gradient norm to this value
    grad_cache_chunk_size: int = 0  # 0: off; >0: GradCache, embed batches in chunks of this many samples (less memory)
    sync_batchnorm: bool = True  # SyncBatchNorm across processes when distributed (global-batch statistics)
    channels_last: bool = True  # NHWC weights and views: ~1.2x faster convolutions on CPU (benchmarks/throughput.py)
    compile: bool = False  # torch.compile the backbone, in place (same weights, checkpoints and encoder file); off:
    # on 2 CPU cores it gains nothing beyond noise (0.9-1.2x) for 20-25 s of compiling (benchmarks/compile.py)
    log_every_n_steps: int = 10  # logging interval in steps
    limit_train_batches: float = 1.0  # fraction (<= 1.0) or number (> 1) of batches per epoch
    deterministic: bool = False  # deterministic kernels (slower)
    on_nonfinite: str = "stop"  # a NaN/inf loss: "stop" (name the step and the usual causes) or "skip" the batch
    nonfinite_limit: int = 10  # with on_nonfinite=skip: stop once more batches than this were skipped
    enable_progress_bar: bool = True  # the progress bar on the terminal
    checkpoint_every_minutes: float = 15.0  # also write last.ckpt mid-epoch on this clock (0: only at epoch ends)
    checkpoint_every_n_steps: int = 0  # >0: mid-epoch checkpoints every n optimiser steps instead of the clock
    keep_checkpoints: int = 2  # mid-epoch snapshots kept beside last.ckpt (checkpoints/step-NNNNNNN.ckpt)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
                f"{hint(self.precision, PRECISIONS)}"
            )
        check_range("trainer.max_epochs", self.max_epochs, low=1)
        check_range("trainer.checkpoint_every_minutes", self.checkpoint_every_minutes, low=0.0)
        check_range("trainer.checkpoint_every_n_steps", self.checkpoint_every_n_steps, low=0)
        check_range("trainer.keep_checkpoints", self.keep_checkpoints, low=1)
        if self.on_nonfinite not in ("stop", "skip"):
            raise ConfigError(f"trainer.on_nonfinite must be stop or skip, got {self.on_nonfinite!r}")
        if self.on_nonfinite == "skip" and self.grad_cache_chunk_size > 0:
            raise ConfigError("trainer.on_nonfinite=skip does not work with gradient caching: use stop")
        check_range("trainer.nonfinite_limit", self.nonfinite_limit, low=0)
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"trainer.max_steps must be -1 (no limit) or >= 1, got {self.max_steps}")
        check_range("trainer.num_nodes", self.num_nodes, low=1)
        check_range("trainer.accumulate_grad_batches", self.accumulate_grad_batches, low=1)
        check_range("trainer.grad_cache_chunk_size", self.grad_cache_chunk_size, low=0)
        check_range("trainer.limit_train_batches", self.limit_train_batches, low=0.0, strict=True)
        if self.gradient_clip_val is not None:
            check_range("trainer.gradient_clip_val", self.gradient_clip_val, low=0.0, strict=True)
        self.devices = str(self.devices)


@dataclass
class MonitorConfig:
    every_n_epochs: int = 1  # run the monitors every n epochs (0: never)
    knn_k: int = 200  # neighbours of the online kNN (Wu et al. 2018 weighted vote)
    knn_temperature: float = 0.1  # temperature of the kNN vote weights exp(cos / t)
    bank_size: int = 10000  # labelled training images embedded as the kNN bank
    query_size: int = 2000  # held-out labelled images classified by the kNN (test split when there is one)
    collapse_warnings: bool = True  # warn when embeddings collapse (per-dimension std, effective rank)

    def __post_init__(self) -> None:
        check_range("monitor.every_n_epochs", self.every_n_epochs, low=0)
        check_range("monitor.knn_k", self.knn_k, low=1)
        check_range("monitor.knn_temperature", self.knn_temperature, low=0.0, strict=True)
        check_range("monitor.bank_size", self.bank_size, low=1)
        check_range("monitor.query_size", self.query_size, low=1)


@dataclass
class FinalEvalConfig:
    enabled: bool = True  # after training: kNN and linear probe vs the random-init encoder and raw pixels
    train_size: int = 10000  # labelled training images the probes are fitted on
    knn_bank_size: int | None = None  # labelled training images in the kNN bank (None: the probes' train_size)
    test_size: int = 10000  # held-out images they are scored on


@dataclass
class RunConfig:
    """A whole run. ``method`` and ``views`` are dicts here; :func:`load_config` types them per method/recipe."""

    name: str = "run"  # run name: outputs go to out_dir/name
    out_dir: str = "runs"  # parent folder of the run folders
    seed: int = 0  # seeds python, numpy, torch and the DataLoader workers
    resume: str | None = None  # a checkpoint to resume from ("last": the run's own last.ckpt)
    overwrite: bool = False  # start over in an existing run folder, replacing its run (else such a folder is refused)
    method: Any = None  # {name: simclr, <the method's constructor parameters>}
    views: Any = None  # {recipe: simclr, <the views recipe's constructor parameters>}
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    final_eval: FinalEvalConfig = field(default_factory=FinalEvalConfig)

    def __post_init__(self) -> None:
        name = str(self.name)
        if not name.strip() or name in (".", "..") or "/" in name or "\\" in name or Path(name).is_absolute():
            raise ConfigError(f"name must be a folder name inside out_dir (no '/', '..'), got {name!r}")
        if self.overwrite and self.resume is not None:
            raise ConfigError("overwrite=true starts the run over and resume= continues it: give one of them")

    @property
    def run_dir(self) -> Path:
        """Where this run writes checkpoints, logs and the encoder."""
        return Path(self.out_dir).expanduser() / self.name


def recipe_dir() -> Path:
    """The folder of the built-in YAML recipes."""
    return Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> list[str]:
    """Names of the built-in recipes (``contrastkit recipes`` prints them with their descriptions)."""
    return sorted(p.stem for p in recipe_dir().glob("*.yaml"))


def recipe_path(recipe: str | Path) -> Path:
    """The YAML file of a built-in recipe name or a path; an unknown name is refused with the closest one."""
    path = Path(recipe).expanduser()
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        return path
    builtin = recipe_dir() / f"{recipe}.yaml"
    if not builtin.is_file():
        raise ConfigError(
            f"unknown recipe {str(recipe)!r}{hint(str(recipe), list_recipes())}: not a built-in recipe "
            f"(see `contrastkit recipes`) and not a .yaml file"
        )
    return builtin


def _views_class(name: str) -> type:
    from contrastkit.views.registry import get_views

    try:
        return get_views(name)
    except ValueError as e:
        raise ConfigError(f"views.recipe: {e}") from None


def _method_class(name: str) -> type:
    import contrastkit.methods as methods

    try:
        return methods.get_method(name)
    except ValueError as e:
        raise ConfigError(f"method.name: {e}") from None


def load_config(recipe: str | Path | dict[str, Any], overrides: typing.Sequence[str] = ()) -> RunConfig:
    """Read a recipe (built-in name, YAML file or dict), apply ``key=value`` overrides and validate it all.

    Args:
        recipe: a built-in recipe name (``simclr-fashion-mnist``), a ``.yaml`` path, or the config as a dict.
        overrides: ``section.key=value`` strings (YAML values: ``optim.betas=[0.9,0.95]``, ``data.path=null``).

    Returns:
        The validated :class:`RunConfig`; ``method`` and ``views`` are plain dicts of validated values.

    Raises:
        ConfigError: unknown recipe or key (with the closest valid name), wrong type (with the expected type),
            a value out of range, or a malformed override.
    """
    import yaml
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        if isinstance(recipe, dict):
            raw = OmegaConf.create(recipe)
        else:
            path = recipe_path(recipe)
            try:
                raw = OmegaConf.load(path)
            except Exception as e:  # YAML syntax errors come as several exception types
                raise ConfigError(f"{path}: not a valid YAML config: {e}") from None
            if not isinstance(raw, DictConfig):
                raise ConfigError(f"{path}: a config must be a mapping of sections (method:, data:, ...), not a list")
        dotlist = []
        for item in overrides:
            if "=" not in item or item.startswith("="):
                raise ConfigError(f"override {item!r} must look like section.key=value (e.g. trainer.max_epochs=5)")
            try:  # one by one, so that a value YAML cannot read is named
                dotlist.append(OmegaConf.from_dotlist([item]))
            except yaml.YAMLError as e:
                first = str(e).strip().splitlines()[0]
                raise ConfigError(f"override {item!r}: the value is not valid YAML ({first}); quote it") from None
        values = OmegaConf.to_container(OmegaConf.merge(raw, *dotlist), resolve=True)
    except OmegaConfBaseException as e:
        raise ConfigError(f"cannot read the config: {str(e).splitlines()[0]}") from None
    if not isinstance(values, dict):
        where = "the config" if isinstance(recipe, dict) else str(recipe_path(recipe))
        raise ConfigError(
            f"{where}: a config must be a mapping of sections (method:, data:, ...), got a {type(values).__name__}"
        )
    values.pop("description", None)
    method_values = dict(values.pop("method", None) or {})
    views_values = dict(values.pop("views", None) or {})
    config = merge("", RunConfig, values)
    if "name" not in method_values:
        raise ConfigError("method.name is missing: which method to train (see contrastkit.methods.list_methods())")
    if config.backbone.pretrained:
        check_pretrained(config.backbone.pretrained)
    method_cls = _method_class(str(method_values["name"]))
    schema = component_schema("method", "name", str(method_values["name"]), method_cls, skip=("backbone",))
    method = dataclasses.asdict(merge("method", schema, method_values))
    config.method = {"name": method.pop("name"), **to_kwargs("method", method, method_cls, ())}
    check_method_values(config.method)
    if config.method.get("guide"):
        check_guide(str(config.method["guide"]))
    if not method_cls.takes_views:  # text pairs, sequences: no images, no views
        if views_values:
            raise ConfigError(
                f"views: method {method_values['name']!r} trains on {method_cls.task} and takes no views section"
            )
        config.views = None
        return config
    if "recipe" not in views_values and method_cls.default_views is None:
        raise ConfigError(f"views.recipe: method {method_values['name']!r} has no default views; name a views recipe")
    views_name = str(views_values.get("recipe", method_cls.default_views))
    from_data = [key for key in ("input_size", "channels") if views_values.get(key) is None]
    views_values = {k: v for k, v in views_values.items() if k not in from_data}
    views_cls = _views_class(views_name)
    schema = component_schema("views", "recipe", views_name, views_cls)
    views = dataclasses.asdict(merge("views", schema, {"recipe": views_name, **views_values}))
    config.views = {"recipe": views.pop("recipe"), **to_kwargs("views", views, views_cls, ())}
    for key in from_data:  # recipes' defaults are for ImageNet: unset (or null) means "from the data"
        if key in config.views:
            config.views[key] = None
    return config


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """The config as plain JSON/YAML-able data (tuples as lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))
