"""The per-epoch monitors: kNN and health logged to the run's CSV, and a collapse warning that says what to do."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from contrastkit.data.labelled import Labelled
from contrastkit.eval.embed_images import embed_images
from contrastkit.train.config import MonitorConfig
from contrastkit.train.fit import train
from contrastkit.train.monitor import CollapseWarning, EmbeddingMonitor
from tests.train.helpers import tiny_config


class Constant(nn.Module):
    """A collapsed encoder: every image gets (almost) the same feature vector."""

    feature_dim = 16

    def __init__(self) -> None:
        super().__init__()
        self.direction = nn.Parameter(torch.randn(16))

    def forward(self, x):
        return self.direction.expand(x.shape[0], -1) + 1e-6 * x.flatten(1)[:, :16]


def _labelled(n: int, seed: int) -> Labelled:
    g = torch.Generator().manual_seed(seed)
    return Labelled(torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8), torch.arange(n) % 4)


def test_collapsed_encoder_warns_with_the_fix():
    monitor = EmbeddingMonitor(MonitorConfig(knn_k=5), _labelled(64, 0), _labelled(32, 1), None, (0.5,), (0.5,), 8)
    module = SimpleNamespace(
        method=SimpleNamespace(embed=Constant(), eval=lambda: None, train=lambda m: None, training=True),
        device=torch.device("cpu"),
        trainer=None,
    )
    with pytest.warns(CollapseWarning, match="complete collapse.*Usually fixed by"):
        metrics = monitor.compute(module)
    assert metrics["health/std_ratio"] < 0.1
    assert monitor.warnings and "complete collapse" in monitor.warnings[0]


def test_embed_images_normalises_and_resizes_like_the_views():
    images = torch.full((3, 1, 4, 4), 255, dtype=torch.uint8)
    out = embed_images(lambda x: x.flatten(1), images, (0.5,), (0.25,), size=8, batch_size=2)
    assert out.shape == (3, 64)
    torch.testing.assert_close(out, torch.full((3, 64), 2.0))  # (1 - 0.5) / 0.25


def test_monitor_metrics_reach_the_csv_log(tmp_path):
    config = tiny_config(
        tmp_path,
        "trainer.max_epochs=2",
        "monitor.every_n_epochs=1",
        "monitor.bank_size=300",
        "monitor.query_size=200",
        "monitor.knn_k=20",
    )
    result = train(config)
    assert [m["epoch"] for m in result.monitor] == [0, 1]
    with open(result.run_dir / "logs" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("knn/top1")]
    assert len(rows) == 2
    accuracy = [float(r["knn/top1"]) for r in rows]
    assert all(acc > 0.3 for acc in accuracy)  # 10 digit classes: chance is 0.1
    assert all(float(r["health/rankme"]) > 1.0 for r in rows)
