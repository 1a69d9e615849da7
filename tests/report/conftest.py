"""One tiny monitored SimCLR run on digits and its report, shared by the report tests (trained once)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from contrastkit.report import write_report
from contrastkit.train.fit import train
from tests.train.helpers import tiny_config


@dataclass
class ReportedRun:
    run_dir: Path
    report: Path


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine two spinning threads made the tiny run 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def reported_run(tmp_path_factory) -> ReportedRun:
    """A 2-epoch run with the monitor on every epoch and the final evaluation, and its HTML report."""
    out = tmp_path_factory.mktemp("report-run")
    config = tiny_config(
        out,
        "monitor.every_n_epochs=1",
        "monitor.bank_size=500",
        "monitor.query_size=200",
        "final_eval.enabled=true",
        "final_eval.train_size=500",
        "final_eval.test_size=200",
    )
    result = train(config)
    return ReportedRun(result.run_dir, write_report(result.run_dir, max_points=200))
