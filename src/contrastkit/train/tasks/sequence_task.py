"""Sequence runs (CPC): 1-D signals from the built-in ``synthetic-signals`` or a ``.npy`` file, the batch itself the
only view, scored at the end by kNN and a linear probe on the pooled contexts next to the random-init encoder and
the raw signal; the frame encoder and its GRU are exported together as one encoder (``kind: sequence``)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from contrastkit.backbones import create_backbone
from contrastkit.data.labelled import has_test_split, hold_out
from contrastkit.data.load_dataset import load_dataset
from contrastkit.data.sequence_dataset import SequenceDataset, load_sequences
from contrastkit.eval.evaluate_encoder import knn_and_probe
from contrastkit.methods import Method, create_method
from contrastkit.train.batch_samplers import sharded_sampler
from contrastkit.train.config import ConfigError, RunConfig, config_to_dict
from contrastkit.train.final_eval import format_table
from contrastkit.train.tasks.task import FinalEvaluation, Task, register_task


class _Batches(Dataset):
    """Whole batches by index: ``(signals (B, C, L), targets (B,))`` of the chosen rows."""

    def __init__(self, data: SequenceDataset, rows: np.ndarray) -> None:
        self.data, self.rows = data, torch.as_tensor(rows, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.rows[torch.as_tensor(positions, dtype=torch.long)]
        return self.data.signals[rows], self.data.targets[rows]


class SequenceDataModule(pl.LightningDataModule):
    """The signals of ``data.path`` (``.npy``) or of a built-in sequence data set; its test split (else a held-out
    fifth, at most ``final_eval.test_size``) for the final scores; the rest (times ``data.train_fraction``) to
    train on, sharded across processes."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        data = config.data
        if data.path:
            train, test = load_sequences(data.path), None
        else:
            train = load_dataset(data.name, split="train", root=data.root, download=data.download)
            if not isinstance(train, SequenceDataset):
                raise ValueError(
                    f"data.name: {data.name!r} holds images, and method {config.method['name']!r} trains on 1-D "
                    "sequences: use data.name=synthetic-signals or data.path=signals.npy ((N, L) or (N, C, L))"
                )
            test = load_dataset(data.name, split="test", root=data.root) if has_test_split(data.name) else None
        order = np.random.default_rng(config.seed).permutation(len(train))
        held = np.array([], dtype=np.int64)
        if test is None and train.classes:  # labelled: a held-out part scores the result
            held, order = hold_out(order, config.final_eval.test_size)
        self.train_set, self.test_set, self.held_out = train, test, np.sort(held)
        self.train_indices = np.sort(order[: max(1, int(len(order) * data.train_fraction))])
        self.batch_size, self.seed = data.batch_size, config.seed
        self.channels, self.length = int(train.signals.shape[1]), int(train.signals.shape[2])

    def describe(self) -> str:
        return self.train_set.name

    def train_dataloader(self) -> DataLoader:
        sampler = sharded_sampler(self.trainer, len(self.train_indices), self.batch_size, self.seed, "sequences")
        return DataLoader(_Batches(self.train_set, self.train_indices), sampler=sampler, batch_size=None)

    def scored_split(self, train_size: int, test_size: int) -> tuple[tuple, tuple] | None:
        """``((signals, labels), (signals, labels))``: labelled training sequences and the test ones, or None."""
        train_rows = self.train_indices[self.train_set.targets[self.train_indices].numpy() >= 0][:train_size]
        if self.test_set is not None:
            test_data, test_rows = self.test_set, np.arange(min(test_size, len(self.test_set)))
        else:
            test_data, test_rows = self.train_set, self.held_out
        if len(train_rows) < 2 or len(test_rows) == 0:
            return None
        pick = lambda d, r: (d.signals[torch.as_tensor(r)], d.targets[torch.as_tensor(r)])  # noqa: E731
        return pick(self.train_set, train_rows), pick(test_data, test_rows)


def build_sequence_method(config: RunConfig, channels: int) -> Method:
    """The sequence backbone of ``backbone.name`` inside the method of ``config.method``."""
    params = dict(config.method)
    backbone = create_backbone(config.backbone.name, in_chans=channels, small_input=config.backbone.small_input)
    if not callable(getattr(backbone, "forward_sequence", None)):
        raise ConfigError(
            f"backbone.name: {config.backbone.name!r} encodes images; method {params['name']!r} trains on sequences "
            "and needs a sequence encoder (sequence_cnn)"
        )
    return create_method(params.pop("name"), backbone, **params)


@register_task("sequences")
class SequenceTask(Task):
    """Trains a sequence method (CPC) on 1-D signals; no views (the signals are the method's input)."""

    def setup(self) -> None:
        self.data = SequenceDataModule(self.config)
        self.method = build_sequence_method(self.config, self.data.channels)

    def encoder_info(self) -> dict[str, Any]:
        config = self.config
        return {
            "backbone": config.backbone.name,
            "small_input": config.backbone.small_input,
            "in_chans": self.data.channels,
            "sequence_length": self.data.length,
            "method": config.method["name"],
            "config": config_to_dict(config),
            **self.method.export_module()[1],
        }

    def evaluate(self, initial: Method) -> FinalEvaluation | None:
        config = self.config
        split = self.data.scored_split(config.final_eval.train_size, config.final_eval.test_size)
        if split is None:
            return None
        (x_train, y_train), (x_test, y_test) = split
        device = next(self.method.parameters()).device
        k = min(config.monitor.knn_k, len(y_train))

        @torch.no_grad()
        def embed(model: Method, x: torch.Tensor) -> torch.Tensor:
            model.eval()
            return torch.cat([model.embed(x[i : i + 512].to(device)).float().cpu() for i in range(0, len(x), 512)])

        encoders = {
            f"{config.method['name']} (trained)": lambda x: embed(self.method, x),
            "random init": lambda x: embed(initial.to(device), x),
            "raw signal": lambda x: x.flatten(1),
        }
        rows = []
        for name, features in encoders.items():
            f_train, f_test = features(x_train), features(x_test)  # (N, D), (M, D)
            scores = knn_and_probe(
                f_train, y_train, f_test, y_test, k, config.monitor.knn_temperature, seed=config.seed
            )
            rows.append({"encoder": name, **scores})
        scores = {"train_images": len(y_train), "test_images": len(y_test), "items": "sequences", "k": k, "rows": rows}
        return FinalEvaluation(scores, format_table(scores))
