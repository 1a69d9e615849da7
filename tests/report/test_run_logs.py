"""Reading a run's CSV logs: segments of resumed runs merged in order, sparse rows and missing files tolerated."""

from __future__ import annotations

from contrastkit.report.run_logs import log_files, read_run_logs


def _write(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def test_sparse_rows_give_one_series_per_key(tmp_path):
    header = ["epoch", "knn/top1", "step", "train/loss", "train/lr"]
    rows = [[0, None, 0, 2.0, 0.1], [0, None, 1, 1.5, 0.2], [0, 0.5, 1, None, None], [1, None, 2, 1.2, 0.1]]
    _write(tmp_path / "logs" / "metrics.csv", header, rows)
    logs = read_run_logs(tmp_path)
    assert logs.get("train/loss").steps == [0, 1, 2] and logs.get("train/loss").values == [2.0, 1.5, 1.2]
    knn = logs.get("knn/top1")
    assert knn.values == [0.5] and knn.epochs == [0]
    assert logs.get("health/rankme") is None and logs.problems == []
    assert logs.first("train/loss_step", "train/loss")[0] == "train/loss"


def test_resumed_segments_follow_in_numeric_order_and_replace_re_run_steps(tmp_path):
    header = ["epoch", "step", "train/loss"]
    _write(tmp_path / "logs" / "metrics.csv", header, [[0, s, 10 - s] for s in range(6)])
    _write(tmp_path / "logs" / "resume-2" / "metrics.csv", header, [[2, s, 0.5] for s in range(8, 10)])
    _write(tmp_path / "logs" / "resume-10" / "metrics.csv", header, [[3, s, 0.1] for s in range(10, 12)])
    # resume-1 restarted from an earlier checkpoint (step 4): its steps replace the first segment's 4 and 5
    _write(tmp_path / "logs" / "resume-1" / "metrics.csv", header, [[1, s, 1.0] for s in range(4, 8)])
    names = [p.parent.name for p in log_files(tmp_path)]
    assert names == ["logs", "resume-1", "resume-2", "resume-10"]
    loss = read_run_logs(tmp_path).get("train/loss")
    assert loss.steps == list(range(12))
    assert loss.values == [10, 9, 8, 7, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


def test_missing_logs_are_a_problem_not_an_error(tmp_path):
    logs = read_run_logs(tmp_path)
    assert logs.series == {} and logs.files == []
    assert "contrastkit train" in logs.problems[0] and "metrics.csv" in logs.problems[0]


def test_non_numbers_and_extra_columns_are_skipped(tmp_path):
    _write(
        tmp_path / "logs" / "metrics.csv", ["epoch", "step", "train/loss", "note"], [[0, 0, "nan", "x"], [0, 1, 3, ""]]
    )
    logs = read_run_logs(tmp_path)
    assert logs.get("train/loss").values == [3.0] and logs.get("note") is None
