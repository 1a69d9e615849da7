"""The SimCLR digits demo (examples/simclr_digits.py): a quick end-to-end run and its kNN against a float64 loop."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

DEMO_PATH = Path(__file__).resolve().parents[1] / "examples" / "simclr_digits.py"
ROWS = ("raw pixels", "random-init encoder", "SimCLR encoder")


@pytest.fixture(scope="module")
def demo():
    """The demo script imported as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("simclr_digits", DEMO_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _reference_knn(train, train_labels, test, num_classes, k, temperature):
    """Weighted cosine kNN written out query by query in float64: sort all similarities, keep k, sum the votes."""
    train, test = train.double().tolist(), test.double().tolist()
    labels = train_labels.tolist()

    def cosine(u, v):
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))

    predictions = []
    for query in test:
        neighbours = sorted(((cosine(query, ref), j) for j, ref in enumerate(train)), reverse=True)[:k]
        votes = [0.0] * num_classes
        for sim, j in neighbours:
            votes[labels[j]] += math.exp(sim / temperature)
        predictions.append(max(range(num_classes), key=lambda c: (votes[c], -c)))  # ties: smaller class id
    return predictions


@pytest.mark.parametrize(("k", "temperature"), [(1, 0.1), (5, 0.1), (20, 0.5), (200, 0.1)])
def test_knn_matches_float64_loop(demo, k, temperature):
    g = torch.Generator().manual_seed(k)
    train = torch.randn(60, 7, generator=g)  # (N, D)
    train_labels = torch.randint(0, 4, (60,), generator=g)  # (N,)
    test = torch.randn(25, 7, generator=g) * 3.0  # (M, D): the scale must not matter (cosine)
    got = demo.knn_predict(train, train_labels, test, num_classes=4, k=k, temperature=temperature)
    assert got.shape == (25,)
    assert got.tolist() == _reference_knn(train, train_labels, test, 4, min(k, 60), temperature)


def test_knn_recovers_separated_clusters(demo):
    centers = torch.eye(5) * 10.0  # (C, D)
    g = torch.Generator().manual_seed(0)
    train_labels = torch.arange(5).repeat(8)  # (40,)
    train = centers[train_labels] + torch.randn(40, 5, generator=g)
    test_labels = torch.arange(5).repeat(3)  # (15,)
    test = centers[test_labels] + torch.randn(15, 5, generator=g)
    assert torch.equal(demo.knn_predict(train, train_labels, test, num_classes=5, k=4), test_labels)


def test_quick_run(demo, tmp_path, capsys):
    out = tmp_path / "encoder.safetensors"
    results = demo.main(["--quick", "--seed", "0", "--out", str(out)])
    assert tuple(results) == ROWS
    for row in ROWS:
        assert set(results[row]) == {"knn", "linear"}
        for acc in results[row].values():
            assert 0.0 <= acc <= 1.0
    # Weighted cosine kNN on the raw 64 pixels of digits is ~0.97: a broken kNN or split would fall well below.
    assert results["raw pixels"]["knn"] >= 0.9
    assert results["raw pixels"]["linear"] >= 0.9

    printed = capsys.readouterr().out
    assert "representation" in printed and "SimCLR encoder" in printed and "took" in printed

    from safetensors.torch import load_file

    encoder = demo.Encoder()
    encoder.load_state_dict(load_file(str(out)))
    assert encoder(torch.zeros(2, 1, demo.IMAGE_SIZE, demo.IMAGE_SIZE)).shape == (2, 128)


def test_augment_shapes_and_determinism(demo):
    images = torch.rand(6, 1, demo.IMAGE_SIZE, demo.IMAGE_SIZE)
    a = demo.augment(images, torch.Generator().manual_seed(3))
    b = demo.augment(images, torch.Generator().manual_seed(3))
    c = demo.augment(images, torch.Generator().manual_seed(4))
    assert a.shape == images.shape and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
