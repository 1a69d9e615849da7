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


def test_data_workers_are_the_cores_shared_among_the_nodes_training_processes(monkeypatch):
    from contrastkit.train import data_workers as module

    one_device, four_devices = SimpleNamespace(num_devices=1), SimpleNamespace(num_devices=4)
    monkeypatch.setattr(module, "usable_cores", lambda: 10)
    assert module.data_workers(None, one_device) == 10 and module.data_workers(None, None) == 10
    assert module.data_workers(None, four_devices) == 2  # 10 cores // 4 processes
    assert module.data_workers(3, four_devices) == 3 and module.data_workers(0, one_device) == 0  # as configured
    monkeypatch.setattr(module, "usable_cores", lambda: 2)
    assert module.data_workers(None, four_devices) == 1  # at least one
    monkeypatch.setattr(module, "usable_cores", lambda: 128)
    assert module.data_workers(None, one_device) == module.MAX_DATA_WORKERS == 16


def test_usable_cores_are_this_processes_affinity():
    import os

    from contrastkit.train.data_workers import usable_cores

    assert usable_cores() == len(os.sched_getaffinity(0)) >= 1
