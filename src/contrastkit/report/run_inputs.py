"""What a report reads from a run folder: its config, its encoder, and images + embeddings of the run's data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.data.multi_view_dataset import match_channels
from contrastkit.data.skip_report import Skipped
from contrastkit.eval.embed_images import embed_images
from contrastkit.train.config import RunConfig, load_config


def check_run_dir(run_dir: Path) -> None:
    """Raise ``FileNotFoundError`` naming what is missing in ``run_dir`` and what writes it.

    Logs are not required: a run that has not logged yet still gets the sections that do not need them.
    """
    if not run_dir.exists():
        raise FileNotFoundError(
            f"run folder {str(run_dir)!r} does not exist: run `contrastkit train` first "
            "(it writes out_dir/name, e.g. runs/simclr-fashion-mnist)"
        )
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a folder: give the run folder written by `contrastkit train`")
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{run_dir / 'config.json'} is missing: not a run folder of `contrastkit train` (it writes config.json "
            "when a run starts); run `contrastkit train` first"
        )
    if not (run_dir / "encoder.safetensors").is_file():
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        hint = (
            f"the run did not finish: export its last checkpoint with `contrastkit export {ckpt} --out "
            f"{run_dir / 'encoder.safetensors'}`"
            if ckpt.is_file()
            else "the run did not finish: let `contrastkit train` run to its end (it writes the encoder last)"
        )
        raise FileNotFoundError(f"{run_dir / 'encoder.safetensors'} is missing: {hint}")


def read_config(run_dir: Path) -> tuple[dict[str, Any], RunConfig]:
    """The run's ``config.json`` as saved (plain dict) and validated (:class:`RunConfig`)."""
    path = run_dir / "config.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    return saved, load_config(saved)


def read_final_eval(run_dir: Path) -> dict[str, Any] | None:
    """``final_eval.json`` when the run wrote one (None when absent or unreadable)."""
    path = run_dir / "final_eval.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


@dataclass
class ReportData:
    """Images of the run's data and their embeddings.

    ``queries`` are held-out (test split) images when the data set has one, else a fixed part of the training
    images; ``bank`` are training images. Labels are None for unlabelled data.
    """

    description: str  # the data's name or path
    classes: list[str] | None  # class names, or None without labels
    query_images: Tensor  # (Nq, C, S, S) uint8
    query_labels: Tensor | None  # (Nq,) int64
    bank_images: Tensor  # (Nb, C, S, S) uint8
    bank_labels: Tensor | None  # (Nb,) int64
    query_emb: Tensor | None = None  # (Nq, D) float32
    bank_emb: Tensor | None = None  # (Nb, D) float32


def _unlabelled_subset(train_set: Any, indices: np.ndarray) -> Tensor:
    from contrastkit.data import ArrayImageDataset

    if isinstance(train_set, ArrayImageDataset):
        return train_set.images[torch.as_tensor(indices, dtype=torch.long)]  # (N, C, S, S)
    items = [train_set[int(i)] for i in indices]
    images = [item[0] for item in items if not isinstance(item, Skipped)]
    return torch.stack(images) if images else torch.empty(0, dtype=torch.uint8)


def load_report_data(config: RunConfig, bank_size: int, query_size: int) -> ReportData:
    """Bank and query images of the run's data (``config.data``), as the run's monitors chose them."""
    from contrastkit.train.data_module import RunDataModule

    data = RunDataModule(config.data, config.seed, bank_size, query_size)
    if data.bank is not None and data.queries is not None:
        return ReportData(
            data.describe(),
            list(data.classes),
            data.queries.images,
            data.queries.labels,
            data.bank.images,
            data.bank.labels,
        )
    if data.stream is not None:
        raise ValueError("streamed .tar shards are not indexed, so the report has no image map or neighbours for them")
    order = np.random.default_rng(config.seed + 2).permutation(data.train_indices)
    queries = _unlabelled_subset(data.train_set, order[:query_size])
    bank = _unlabelled_subset(data.train_set, order[query_size : query_size + bank_size])
    if len(bank) == 0:  # a tiny data set: search the queries among themselves
        bank = queries
    return ReportData(data.describe(), None, queries, None, bank, None)


def _channels(images: Tensor, channels: int) -> Tensor:
    if images.shape[1] == channels:
        return images
    return torch.stack([match_channels(image, channels) for image in images])  # (N, channels, S, S)


def embed(encoder: nn.Module, images: Tensor) -> Tensor:
    """Embeddings ``(N, D)`` of uint8 images, prepared as the encoder's metadata says (size, mean, std)."""
    info = encoder.encoder_info
    images = _channels(images, int(info["in_chans"]))
    return embed_images(encoder, images, tuple(info["mean"]), tuple(info["std"]), int(info["input_size"]))


def nearest_neighbours(queries: Tensor, bank: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Cosine similarities ``(Nq, k)`` and bank indices ``(Nq, k)`` of each query's ``k`` nearest bank rows."""
    q, b = F.normalize(queries, dim=1), F.normalize(bank, dim=1)  # (Nq, D), (Nb, D)
    sims = q @ b.T  # (Nq, Nb)
    top = sims.topk(min(k, b.shape[0]), dim=1)
    return top.values, top.indices


@torch.no_grad()
def view_pair_embeddings(encoder: nn.Module, config: RunConfig, images: Tensor, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Embeddings of two random views of each image, drawn with the run's own views recipe.

    Returns:
        ``(z_a, z_b)``, each ``(N, D)``: row i of both comes from image i (a positive pair).
    """
    from contrastkit.train.tasks import build_views

    views = build_views(config, int(images.shape[1]), int(images.shape[-1]))
    generator = torch.Generator().manual_seed(seed)
    in_chans = int(encoder.encoder_info["in_chans"])
    images = _channels(images, views.specs[0].channels)
    first = views.batch(images, generator)  # V x (N, C, S, S) float32, normalised
    second = first[1] if len(first) > 1 else views.batch(images, generator)[0]  # one-view recipes: draw again

    def features(x: Tensor) -> Tensor:
        if x.shape[1] != in_chans:
            x = x.mean(1, keepdim=True) if in_chans == 1 else x.expand(-1, in_chans, -1, -1)
        return torch.cat([encoder(x[i : i + 256]).float() for i in range(0, len(x), 256)])  # (N, D)

    return features(first[0]), features(second)


__all__ = [
    "ReportData",
    "check_run_dir",
    "embed",
    "load_report_data",
    "nearest_neighbours",
    "read_config",
    "read_final_eval",
    "view_pair_embeddings",
]
