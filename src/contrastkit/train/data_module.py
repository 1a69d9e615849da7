"""The run's data: fixed-size uint8 images for the batched views, sharded across processes, plus labelled
subsets for the monitors and the final evaluation."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from contrastkit.data import ArrayImageDataset, SkipReport, load_dataset, split_skipped
from contrastkit.data.class_captions import ClassCaptions, class_wordings
from contrastkit.data.image_folder import ImageFolderDataset
from contrastkit.data.image_text_pairs import ImageTextDataset
from contrastkit.data.labelled import FixedSizeImages, Labelled, has_test_split, hold_out, image_geometry, take
from contrastkit.data.multi_view_dataset import match_channels
from contrastkit.data.shard_epochs import ShardEpochs, count_shard_samples
from contrastkit.data.skip_report import Skipped, check_not_empty, check_some_readable
from contrastkit.data.undecoded_jpegs import UndecodedBatch, UndecodedJpegs, collate_undecoded, decode_undecoded
from contrastkit.data.webdataset_shards import WebDatasetShards
from contrastkit.train.batch_samplers import resume_position, sharded_sampler
from contrastkit.train.config import DataConfig
from contrastkit.train.data_workers import data_workers

STREAM_SHUFFLE_BUFFER = 1000  # tar shards: samples shuffled through a buffer this large (and the shard order)
_NOT_A_FOLDER = (
    "data.decode=device decodes the JPEGs of an image folder, and {} is not one (built-in data, tar shards and "
    "listings are read by the workers: leave data.decode=workers)"
)
DEFAULT_PATH_IMAGE_SIZE = 256  # path data: the largest size images are brought to when data.image_size is unset


class ArrayBatches(Dataset):
    """A whole batch per item from in-memory arrays (one index per batch of indices: no per-image overhead)."""

    def __init__(self, dataset: ArrayImageDataset, channels: int) -> None:
        self.dataset, self.channels = dataset, channels

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        images = self.dataset.images[idx]  # (B, C, H, W) uint8
        if images.shape[1] != self.channels:
            images = torch.stack([match_channels(im, self.channels) for im in images])
        return images, self.dataset.targets[idx]


def pin_memory(trainer: pl.Trainer | None) -> bool:
    """Whether the loader hands out page-locked batches: when they go to a CUDA device (the copy then runs
    asynchronously, overlapping the step), never for a CPU run (pinning would only cost a copy)."""
    return trainer is not None and trainer.strategy.root_device.type == "cuda"


def collate_images(batch: Sequence[Any]) -> tuple[Tensor, Tensor, list[tuple[str, str, str]]]:
    """``(images uint8 (B, C, S, S), targets (B,), skipped)`` from per-image items, Skipped ones dropped.

    ``skipped`` holds ``(path, reason, detail)`` tuples of the dropped items: plain data, which Lightning's batch
    transfer can walk (a frozen dataclass it cannot); :meth:`RunDataModule.on_after_batch_transfer` counts them.
    """
    kept, skipped = split_skipped(batch)
    records = [(s.path, s.reason, s.detail) for s in skipped]
    if not kept:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.long), records
    images = torch.stack([image for image, _ in kept])
    targets = [t for _, t in kept]
    if isinstance(targets[0], str):  # captions
        return images, targets, records
    return images, torch.tensor(targets, dtype=torch.long), records


class RunDataModule(pl.LightningDataModule):
    """Training data of a run, plus labelled bank/query subsets when the data has labels.

    Built-in data sets use their test split as queries; path data with class folders uses a fixed random part
    of the training images (they are still trained on: labels never are).

    Args:
        config: the data section.
        seed: seed of the shuffling and of the subsets.
        bank_size: labelled training images for the kNN bank (and the probes' training set).
        query_size: labelled held-out images.
    """

    def __init__(self, config: DataConfig, seed: int = 0, bank_size: int = 10000, query_size: int = 2000) -> None:
        super().__init__()
        self.config, self.seed = config, seed
        self.batch_size = config.batch_size
        self.skips = SkipReport()
        self.source = config.path if config.path else config.name
        self.query_size = query_size
        train, test = self._load()
        train, test = self._bring_to_one_size(train, test)
        rng = np.random.default_rng(seed)  # one generator: the training subset, then the bank and queries
        self._draw_training_indices(train, rng)
        self.train_set, self.test_set = train, test
        self.classes = getattr(train, "classes", None)
        self.bank, self.queries = self._bank_and_queries(train, test, rng, bank_size)
        if config.classes:
            self.train_indices = self._only_classes(config.classes)
        self._set_captions(train)

    def _load(self) -> tuple[Any, Any]:
        """The training data (checked readable) and a built-in data set's test split (None for path data)."""
        config, source = self.config, self.source
        if config.decode == "device" and (config.path is None or not os.path.isdir(os.path.expanduser(config.path))):
            raise ValueError(_NOT_A_FOLDER.format(source))
        options: dict[str, Any] = {}
        if config.path is None and config.root is not None:
            options["root"] = config.root
        train = load_dataset(source, split="train", download=config.download, **options)
        check_not_empty(train, source)
        if config.path is not None and not isinstance(train, WebDatasetShards | ArrayImageDataset):
            check_some_readable(train, f"data.path={config.path}")  # not a folder of only corrupt files
        self.stream = train if isinstance(train, WebDatasetShards) else None  # tar shards, read as a stream
        if config.decode == "device" and not isinstance(train, ImageFolderDataset):  # a folder of shards
            raise ValueError(_NOT_A_FOLDER.format(source))
        if self.stream is None and (not hasattr(train, "__getitem__") or not hasattr(train, "__len__")):
            raise ValueError(
                f"{source}: a stream contrastkit train cannot read (use .tar shards, a folder or a listing)"
            )
        test = None
        if config.path is None and has_test_split(config.name):
            test = load_dataset(source, split="test", download=config.download, **options)
        return train, test

    def _bring_to_one_size(self, train: Any, test: Any) -> tuple[Any, Any]:
        """``channels`` and ``image_size`` of the batches; path data read at them (the config's sizes, else its
        images' own, probed on the first ones)."""
        config = self.config
        if isinstance(train, ArrayImageDataset):
            keep = config.channels in (None, train.images.shape[1])
            self.channels = int(train.images.shape[1]) if keep else config.channels
            self.image_size = int(train.images.shape[-1])
            return train, test
        channels, size = (config.channels, config.image_size)
        if channels is None or size is None:
            found = image_geometry(train, largest=DEFAULT_PATH_IMAGE_SIZE)
            channels, size = channels or found[0], size or found[1]
            print(
                f"data: {self.source} read at {size} x {size} pixels, {channels} channel(s) (from its images; set "
                "data.image_size / data.channels to choose)"
            )
        self.channels, self.image_size = channels, size
        if isinstance(train, ImageFolderDataset | WebDatasetShards | ImageTextDataset):
            train.min_side = size  # a JPEG 4x larger than the training size decodes at a reduced scale
        train = train if self.stream is not None else FixedSizeImages(train, self.image_size, self.channels)
        return train, None

    def _draw_training_indices(self, train: Any, rng: np.random.Generator) -> None:
        """``train_indices``: a seeded ``data.train_fraction`` of the data (None for streamed shards, which are
        counted from their headers instead)."""
        if self.stream is None:
            n = len(train)
            self.train_indices = np.sort(rng.permutation(n)[: max(1, math.floor(n * self.config.train_fraction))])
            return
        self.train_indices = None  # every sample of the shards (no kNN bank: a stream has no class names)
        if train.shuffle_buffer == 0:  # training reads shards and samples in a fresh order every epoch
            train.shuffle_buffer, train.seed = STREAM_SHUFFLE_BUFFER, self.seed
        self.stream_samples = count_shard_samples(train.urls)  # None: remote shards
        counted = "remote" if self.stream_samples is None else f"{self.stream_samples} samples"
        print(f"data: {self.source}: {len(train.urls)} shards, {counted}, streamed")

    def _bank_and_queries(
        self, train: Any, test: Any, rng: np.random.Generator, bank_size: int
    ) -> tuple[Labelled | None, Labelled | None]:
        """The labelled kNN bank (training images) and queries (the test split, else held-out training images:
        at most a fifth, so small folders keep a bank); None when the data has too few labels."""
        if not self.classes:
            return None, None
        order = rng.permutation(self.train_indices)
        if test is not None:
            bank = take(train, order[:bank_size])
            queries = take(test, rng.permutation(len(test))[: self.query_size])
        else:
            held, rest = hold_out(order, self.query_size)
            queries, bank = take(train, held), take(train, rest[:bank_size])
        if len(bank.labels) < 2 or len(queries.labels) == 0:
            print(
                f"data: {self.source} has too few labelled images for a kNN bank and queries ({len(bank.labels)} "
                f"and {len(queries.labels)}): no kNN monitor and no final kNN / probe table"
            )
            return None, None
        return bank, queries

    def _set_captions(self, train: Any) -> None:
        """How classes read in captions and prompts (the data set's own wording, then the config's), and the
        captions of image-text methods on labelled data."""
        config, source = self.config, self.source
        self.class_wording = {**getattr(train, "class_wording", {}), **config.class_wording}
        if config.class_wording:
            if not self.classes:
                raise ValueError(f"data.class_wording words class names, and {source!r} has no classes")
            try:
                class_wordings(self.classes, config.class_wording)
            except ValueError as e:
                raise ValueError(f"data.class_wording: {e}") from None
        self.captions = None  # class ids -> captions
        if config.caption_templates:
            if not self.classes:
                raise ValueError(f"data.caption_templates needs class names, and {source!r} has no classes")
            self.captions = ClassCaptions(self.classes, config.caption_templates, self.seed, self.class_wording)
        self.has_captions = self.captions is not None or isinstance(getattr(train, "dataset", train), ImageTextDataset)

    def _only_classes(self, names: list[str]) -> np.ndarray:
        """The training indices of the named classes (``data.classes``)."""
        if not self.classes:
            raise ValueError(f"data.classes needs class names, and {self.source!r} has no classes")
        unknown = [n for n in names if n not in self.classes]
        if unknown:
            raise ValueError(f"data.classes: {unknown} are not classes of {self.source!r}; its classes: {self.classes}")
        targets = getattr(self.train_set, "targets", None)
        if targets is None:
            raise ValueError(
                f"data.classes: {self.source!r} does not list its labels up front; use a built-in data set"
            )
        wanted = torch.tensor([self.classes.index(n) for n in names])
        keep = torch.isin(torch.as_tensor(targets)[torch.as_tensor(self.train_indices)], wanted).numpy()
        if not keep.any():
            raise ValueError(f"data.classes: no training images of {names} in {self.source!r}")
        return self.train_indices[keep]

    def describe(self) -> str:
        """The data's name or path, for messages."""
        return repr(self.source)

    def health_images(self) -> Tensor | None:
        """Training images for the health monitors when there are no labelled queries (None when there are)."""
        if self.queries is not None:
            return None
        if self.stream is not None:  # the first images of the shards (as read in epoch 0's order)
            items = itertools.islice(
                ShardEpochs(self.stream, 1, self.query_size, self.image_size, self.channels), self.query_size
            )
            images = [item[0] for item in items if not isinstance(item, Skipped)]
            return torch.stack(images) if images else None
        order = np.random.default_rng(self.seed + 1).permutation(self.train_indices)[: self.query_size]
        if isinstance(self.train_set, ArrayImageDataset):
            return self.train_set.images[torch.as_tensor(order, dtype=torch.long)]
        items = [self.train_set[int(i)] for i in order]
        images = [item[0] for item in items if not isinstance(item, Skipped)]
        return torch.stack(images) if images else None

    def _stream_loader(self) -> DataLoader:
        """The shards as epochs of a fixed number of batches per process (see :class:`ShardEpochs`)."""
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        self.stream.rank, self.stream.world_size = rank, world
        limit = trainer.limit_train_batches if trainer is not None else 1.0
        if self.stream_samples is None:  # remote shards: the epoch length must be given
            if not (isinstance(limit, int) and limit > 1):
                raise ValueError(
                    f"{self.source}: remote shards, whose samples cannot be counted before reading them: set "
                    "trainer.limit_train_batches=N, the batches per process in an epoch"
                )
            batches = limit
        else:
            batches = -(-self.stream_samples // (self.batch_size * world))  # every sample at least once
        if batches < 1:
            raise ValueError(
                f"data has {self.stream_samples} samples in its shards, fewer than one global batch "
                f"({self.batch_size} x {world} processes): lower data.batch_size"
            )
        epochs = ShardEpochs(self.stream, batches, self.batch_size, self.image_size, self.channels)
        if trainer is not None:
            # the epoch this loader's first pass reads: a mid-epoch checkpoint's own (the trainer's epoch counter is
            # not restored yet when Lightning asks for the loader), else the trainer's
            position = resume_position(trainer)
            if position and 0 < position["batches"] < batches:
                epochs.set_epoch(position["epoch"])
                epochs.resume_at(position["epoch"], position["batches"])
            elif position:  # an end-of-epoch checkpoint: the next epoch
                epochs.set_epoch(position["epoch"] + 1)
            else:
                epochs.set_epoch(trainer.current_epoch)
        self.epochs = epochs
        workers = data_workers(self.config.num_workers, trainer)
        return DataLoader(epochs, batch_size=self.batch_size, num_workers=workers, collate_fn=collate_images,
                          persistent_workers=False, pin_memory=pin_memory(trainer))  # fmt: skip

    def set_epoch(self, epoch: int) -> None:
        """The epoch a stream reads next (its shuffle order); Lightning only tells samplers, not streams."""
        if getattr(self, "epochs", None) is not None:
            self.epochs.set_epoch(epoch)

    def train_dataloader(self) -> DataLoader:
        if self.stream is not None:
            return self._stream_loader()
        sampler = sharded_sampler(self.trainer, len(self.train_indices), self.batch_size, self.seed, "images")
        subset = _IndexMap(self.train_indices)
        if isinstance(self.train_set, ArrayImageDataset):
            return DataLoader(
                _Remapped(ArrayBatches(self.train_set, self.channels), subset),
                sampler=sampler,
                batch_size=None,
                num_workers=0,  # whole batches are one tensor index: workers would only add copies
                pin_memory=pin_memory(self.trainer),
            )
        on_device = self.config.decode == "device"  # an image folder: checked when it was loaded
        items = UndecodedJpegs(self.train_set.dataset, self.image_size, self.channels) if on_device else self.train_set
        return DataLoader(
            _RemappedItems(items, subset),
            batch_sampler=sampler,
            num_workers=data_workers(self.config.num_workers, self.trainer),
            collate_fn=collate_undecoded if on_device else collate_images,
            persistent_workers=False,
            pin_memory=pin_memory(self.trainer),
        )

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """``data.decode=device``: the batch's JPEGs decoded on the training device, in one call (see
        :mod:`contrastkit.data.undecoded_jpegs`); any other batch as it is."""
        if not isinstance(batch, UndecodedBatch):
            return batch
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        return decode_undecoded(batch, device, self.image_size, self.channels)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> tuple[Tensor, Any]:
        if len(batch) == 3:  # per-image loading: count the unreadable images, train on the rest
            images, targets, skipped = batch
            self.skips.add(Skipped(*record) for record in skipped)
        else:
            images, targets = batch
        return images, targets  # class ids become captions in the training step (LitMethod's captions)


class _IndexMap:
    def __init__(self, indices: np.ndarray) -> None:
        self.indices = torch.as_tensor(indices, dtype=torch.long)

    def __call__(self, positions: Sequence[int] | int) -> Any:
        if isinstance(positions, int):
            return int(self.indices[positions])
        return self.indices[torch.as_tensor(positions, dtype=torch.long)].tolist()


class _Remapped(Dataset):
    def __init__(self, batches: ArrayBatches, index_map: _IndexMap) -> None:
        self.batches, self.index_map = batches, index_map

    def __len__(self) -> int:
        return len(self.index_map.indices)

    def __getitem__(self, positions: Sequence[int]) -> tuple[Tensor, Tensor]:
        return self.batches[self.index_map(positions)]


class _RemappedItems(Dataset):
    def __init__(self, dataset: Any, index_map: _IndexMap) -> None:
        self.dataset, self.index_map = dataset, index_map

    def __len__(self) -> int:
        return len(self.index_map.indices)

    def __getitem__(self, position: int) -> Any:
        return self.dataset[self.index_map(position)]
