"""The image data module's loaders: page-locked batches only where they go to a GPU."""

from __future__ import annotations

from types import SimpleNamespace

import lightning.pytorch as pl
import torch

from contrastkit.train.data_module import pin_memory


def test_batches_are_pinned_only_for_a_cuda_device():
    assert pin_memory(pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)) is False
    assert pin_memory(None) is False  # a loader asked for before a trainer is attached
    on_gpu = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda", 0)))
    assert pin_memory(on_gpu) is True
