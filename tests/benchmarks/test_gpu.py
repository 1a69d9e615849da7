"""benchmarks/gpu.py runs end to end on the CPU at tiny sizes: what a GPU machine will run is exercised here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def gpu_benchmark():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_every_row_runs_and_the_json_holds_the_table(gpu_benchmark, tmp_path, capsys):
    import torch

    from contrastkit.train.data_workers import data_workers

    threads = torch.get_num_threads()
    result = gpu_benchmark.main(["--tiny", "--json", str(tmp_path / "gpu.json")])
    assert torch.get_num_threads() == threads  # the one-core rows give the other tests their threads back
    rows = result["rows"]
    workers = data_workers(None, None)
    assert [r["what"] for r in rows] == [
        "contrastkit InfoNCELoss",
        "lightly NTXentLoss",
        "contrastkit SimCLR",
        "lightly loop",
        f"data.decode=device, {workers} workers, views on CPU",
        f"data.decode=workers, {workers} workers, views on CPU",
        "lightly SimCLRTransform, 1 CPU core",
        "PIL decode alone, 1 CPU core",
    ]
    numbers = [r.get("ms") or r.get("images_per_s") or r.get("pairs_per_s") for r in rows]
    assert all(isinstance(x, float) and x > 0 for x in numbers)
    assert json.loads((tmp_path / "gpu.json").read_text())["rows"] == rows
    printed = capsys.readouterr().out
    assert "InfoNCE N=256" in printed and "pairs/s" in printed and "img/s" in printed


def test_the_jpegs_are_imagenet_like(gpu_benchmark):
    import io

    from PIL import Image

    jpegs = gpu_benchmark.make_jpegs(6)
    sizes = {Image.open(io.BytesIO(b)).size for b in jpegs}
    assert sizes <= {(500, 375), (375, 500)} and all(Image.open(io.BytesIO(b)).format == "JPEG" for b in jpegs)
    assert len(set(jpegs)) == 6  # different crops, not one image six times
