"""Streaming tar shards (WebDataset format), split across ranks and DataLoader workers, each sample once per epoch."""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from contrastkit.data.skip_report import Skipped, check_channels, load_image_or_skip

MAX_LISTED = 10  # missing shards listed in one error message


def expand_shards(urls: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Shard list from a brace pattern (``"data/shard-{000..009}.tar"``), ``::``-separated patterns, or a list."""
    import webdataset as wds  # the `train` extra: imported when shards are used, so `contrastkit.data` needs no more

    if isinstance(urls, str | os.PathLike):
        return wds.shardlists.expand_urls(os.fspath(urls))
    result: list[str] = []
    for url in urls:
        result.extend(wds.shardlists.expand_urls(os.fspath(url)))
    return result


def _local_path(url: str) -> str | None:
    """The file path of a local shard, None for a remote one (``http://``, ``pipe:``, ...)."""
    if url.startswith("file:"):
        return url[len("file:") :]
    return None if "://" in url or url.startswith("pipe:") else url


def distributed_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world size): the arguments when given, else torch.distributed, else $RANK / $WORLD_SIZE, else (0, 1)."""
    if rank is not None or world_size is not None:
        if rank is None or world_size is None or not 0 <= rank < world_size:
            raise ValueError(f"pass both rank and world_size with 0 <= rank < world_size, got {rank}, {world_size}")
        return rank, world_size
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun, before init_process_group
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return 0, 1


def assign_shards(shards: list[str], slot: int, n_slots: int) -> tuple[list[str], bool]:
    """The shards one reader (``slot`` of ``n_slots`` = world size x workers) reads, and whether to stride samples.

    With at least as many shards as readers, reader ``slot`` gets ``shards[slot::n_slots]`` (disjoint, together
    all). With fewer, every reader reads every shard and keeps samples ``slot, slot + n_slots, ...`` of the stream
    (returned flag True): still each sample exactly once, at the cost of each reader reading all the shards.
    """
    if len(shards) >= n_slots:
        return shards[slot::n_slots], False
    return list(shards), True


class WebDatasetShards(IterableDataset):
    """Samples streamed from tar shards written in the WebDataset format (``key.jpg``, ``key.cls``, ``key.txt``).

    Items are ``(image uint8 (C, H, W), target int)`` (-1 when the sample has no ``target_key``), or
    ``(image, caption str)`` when ``caption_key`` is given. A sample whose image cannot be decoded, that has no image,
    or whose label / caption is unreadable, and a shard that cannot be read (from the point of the error), give
    :class:`~contrastkit.data.skip_report.Skipped` items; the stream goes on.

    Splitting: the readers are the DataLoader workers of every rank (``n = world_size * num_workers``); reader
    ``rank * num_workers + worker`` reads ``shards[reader::n]``, so each sample is seen exactly once per epoch. When
    there are fewer shards than readers, every reader reads all the shards and keeps every n-th sample instead (a
    warning says so: that is correct but reads the data n times; write more shards). Ranks may get different
    numbers of samples when shards differ in size: for DDP, have at least a few shards per reader of similar size.

    Shuffling (``shuffle_buffer > 0``): the shard order is shuffled per epoch with the same seed on every reader
    (so the split above stays a partition), then samples go through a buffer of that size. Call
    :meth:`set_epoch` before each epoch to reshuffle; with ``persistent_workers=True`` the workers keep the epoch
    they started with, so use non-persistent workers when reshuffling matters.

    Args:
        urls: shard paths or URLs: a brace pattern (``"shards/train-{000..099}.tar"``), or a list of them.
        image_key: the image extension(s) in a sample, ``;``-separated; the first one present is used.
        target_key: the extension holding the integer class label (None: every target is -1).
        caption_key: the extension holding a UTF-8 caption (e.g. ``"txt"``); items are then ``(image, caption)``.
        shuffle_buffer: sample shuffle buffer size (0: no shuffling of shards or samples).
        seed: seed of the shard and sample shuffling.
        channels: None (grayscale 1 channel, others 3), or 1 / 3 to force.
        rank: this process's rank; with ``world_size``, overrides torch.distributed (for tests and custom launchers).
        world_size: the number of ranks.

    Raises:
        ValueError: no shard, or local shard files that do not exist (the total and the first 10 are listed).
    """

    classes = None

    def __init__(
        self,
        urls: str | os.PathLike | Iterable[str | os.PathLike],
        image_key: str = "jpg;png;jpeg;webp",
        target_key: str | None = "cls",
        caption_key: str | None = None,
        shuffle_buffer: int = 0,
        seed: int = 0,
        channels: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        self.urls = expand_shards(urls)
        if not self.urls:
            raise ValueError(f"no shards in {urls!r}")
        missing = [u for u in self.urls if (p := _local_path(u)) is not None and not os.path.isfile(p)]
        if missing:
            listed = "\n".join(f"  {u}" for u in missing[:MAX_LISTED])
            more = f"\n  ... and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
            raise ValueError(f"{len(missing)} of {len(self.urls)} shard files do not exist:\n{listed}{more}")
        self.image_keys = [k.strip().lower() for k in image_key.split(";") if k.strip()]
        if not self.image_keys:
            raise ValueError(f"image_key must name at least one extension, got {image_key!r}")
        self.target_key = target_key.lower() if target_key else None
        self.caption_key = caption_key.lower() if caption_key else None
        if shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be >= 0, got {shuffle_buffer}")
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.channels = check_channels(channels)
        self.min_side: int | None = None  # the side images are brought to next: large JPEGs decoded at 1/2 ... 1/8
        self.rank, self.world_size = distributed_rank(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the shuffling order of ``epoch`` (call before creating the epoch's DataLoader iterator)."""
        self.epoch = int(epoch)

    def _read_shard(self, url: str) -> Iterator[dict[str, Any] | Skipped]:
        """Raw samples (dicts of extension -> bytes) of one shard; a read error ends the shard with one Skipped."""
        errors: list[BaseException] = []

        def keep_going(error: BaseException) -> bool:
            errors.append(error)
            return True

        import webdataset as wds

        yield from wds.tariterators.tarfile_samples([{"url": url}], handler=keep_going)
        if errors:  # one report per shard: the read stops at the first error (webdataset may report it twice)
            detail = str(errors[0].args[0]).split(" @ ")[0] if errors[0].args else ""
            yield Skipped(url, "unreadable shard", f"{type(errors[0]).__name__}: {detail}")

    def _decode(self, sample: dict[str, Any]) -> tuple[torch.Tensor, int | str] | Skipped:
        """(image uint8 (C, H, W), target or caption) from a raw sample, or Skipped."""
        base = f"{sample.get('__url__')}/{sample.get('__key__')}"
        ext = next((k for k in self.image_keys if k in sample), None)
        if ext is None:
            found = sorted(k for k in sample if not k.startswith("__"))
            return Skipped(base, "no image in sample", f"expected one of {self.image_keys}, found {found}")
        image = load_image_or_skip(sample[ext], self.channels, name=f"{base}.{ext}", min_side=self.min_side)
        if isinstance(image, Skipped):
            return image
        if self.caption_key is not None:
            try:
                caption = sample[self.caption_key].decode("utf-8")
            except (KeyError, UnicodeDecodeError) as error:
                return Skipped(f"{base}.{self.caption_key}", "missing or unreadable caption", repr(error))
            return image, caption
        if self.target_key is None or self.target_key not in sample:
            return image, -1
        try:
            return image, int(sample[self.target_key].decode("utf-8").strip())
        except (UnicodeDecodeError, ValueError) as error:
            return Skipped(f"{base}.{self.target_key}", "unreadable label", repr(error))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int | str] | Skipped]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        n_slots = self.world_size * num_workers
        slot = self.rank * num_workers + worker
        shards = list(self.urls)
        if self.shuffle_buffer > 0:
            random.Random(f"shards-{self.seed}-{self.epoch}").shuffle(shards)  # same order on every reader
        mine, stride = assign_shards(shards, slot, n_slots)
        if stride and slot == 0:
            warnings.warn(
                f"{len(shards)} shards for {n_slots} readers (world size {self.world_size} x {num_workers} workers): "
                f"every reader reads every shard and keeps 1/{n_slots} of the samples; write at least "
                f"{n_slots} shards to read the data once",
                stacklevel=2,
            )

        def owned() -> Iterator[dict[str, Any] | Skipped]:
            index = 0
            for url in mine:
                for sample in self._read_shard(url):
                    if isinstance(sample, Skipped):  # a shard error: reported by one reader only
                        if not stride or slot == 0:
                            yield sample
                    else:
                        if not stride or index % n_slots == slot:
                            yield sample
                        index += 1

        stream: Iterator[dict[str, Any] | Skipped] = owned()
        if self.shuffle_buffer > 0:
            stream = _shuffled(stream, self.shuffle_buffer, random.Random(f"samples-{self.seed}-{self.epoch}-{slot}"))
        for sample in stream:
            yield sample if isinstance(sample, Skipped) else self._decode(sample)

    def __repr__(self) -> str:
        return f"WebDatasetShards({len(self.urls)} shards, rank={self.rank}/{self.world_size}, epoch={self.epoch})"


def _shuffled(items: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """Shuffle a stream with a buffer of ``size`` items: each yield is a random item of the full buffer."""
    buffer: list[Any] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= size:
            i = rng.randrange(len(buffer))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()
    rng.shuffle(buffer)
    yield from buffer
