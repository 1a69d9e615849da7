"""The plain-loop example (examples/simclr_digits.py): built only from library pieces, and it runs end to end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

DEMO_PATH = Path(__file__).resolve().parents[1] / "examples" / "simclr_digits.py"
ROWS = ("raw pixels", "random-init encoder", "SimCLR encoder")


@pytest.fixture(scope="module")
def demo():
    """The example imported as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("simclr_digits", DEMO_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_the_example_uses_the_library_not_copies_of_it():
    source = DEMO_PATH.read_text()
    for piece in ("SimCLRViews", "create_backbone", "ProjectionHead", "InfoNCELoss", "knn_accuracy", "linear_probe"):
        assert piece in source
    assert "def knn" not in source and "def augment" not in source and "class Encoder" not in source


def test_quick_run(demo, tmp_path, capsys):
    out = tmp_path / "encoder.safetensors"
    results = demo.main(["--quick", "--seed", "0", "--out", str(out)])
    assert tuple(results) == ROWS
    for row in ROWS:
        assert set(results[row]) == {"knn", "linear"} and all(0.0 <= a <= 1.0 for a in results[row].values())
    # Weighted cosine kNN on the raw 64 pixels of digits is ~0.97: a broken kNN or split would fall well below.
    assert results["raw pixels"]["knn"] >= 0.9 and results["raw pixels"]["linear"] >= 0.9
    printed = capsys.readouterr().out
    assert "representation" in printed and "SimCLR encoder" in printed and "took" in printed
    import contrastkit

    encoder = contrastkit.load_encoder(out)  # an ordinary encoder file: every command takes it
    assert encoder(torch.zeros(2, 1, demo.IMAGE_SIZE, demo.IMAGE_SIZE)).shape == (2, 128)
