"""`write_report` / `contrastkit report`: one offline HTML page with a real picture per section, and clear errors."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from contrastkit.cli.main import main
from contrastkit.report import SECTION_IDS, write_report
from contrastkit.train.fit import train
from tests.train.helpers import tiny_config

FIGURE_SECTIONS = ("training", "knn", "map", "neighbours", "similarity", "health")


def sections(page: str) -> dict[str, str]:
    """Section id -> its HTML."""
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, flags=re.S))


def section_image(body: str) -> Image.Image | None:
    found = re.search(r'<img [^>]*src="data:image/png;base64,([^"]+)"', body)
    return Image.open(io.BytesIO(base64.b64decode(found.group(1)))).convert("RGB") if found else None


def assert_not_trivial(image: Image.Image) -> None:
    pixels = np.asarray(image, dtype=np.float64)  # (H, W, 3)
    assert image.width > 200 and image.height > 150
    assert pixels.std() > 5, "a flat picture"
    assert len(image.getcolors(maxcolors=1 << 20)) > 20, "hardly any colours: nothing drawn"


def test_report_is_self_contained(reported_run):
    page = reported_run.report.read_text()
    assert reported_run.report == reported_run.run_dir / "report.html"
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))
    assert len(page) < 2_000_000


def test_every_section_is_there_with_a_real_picture(reported_run):
    found = sections(reported_run.report.read_text())
    assert tuple(found) == SECTION_IDS
    for sid in FIGURE_SECTIONS:
        body = found[sid]
        assert "<h2>" in body and 'class="how"' in body, sid
        assert 'class="note"' not in body, (sid, body[:500])  # nothing is missing in a monitored run
        image = section_image(body)
        assert image is not None, sid
        assert_not_trivial(image)


def test_config_and_final_eval_appear(reported_run):
    config = sections(reported_run.report.read_text())["config"]
    for text in ("small_cnn", "digits", "views.jitter_strength", "method.temperature", "0.5", "simclr (trained)"):
        assert text in config, text
    assert "linear probe" in config and "random init" in config and "raw pixels" in config
    health = sections(reported_run.report.read_text())["health"]
    assert "alignment" in health and "uniformity" in health and "RankMe" in health


def test_a_run_without_logs_still_gets_the_sections_it_can(reported_run, tmp_path):
    run = tmp_path / "nologs"
    shutil.copytree(reported_run.run_dir, run, ignore=shutil.ignore_patterns("logs", "report.html", "checkpoints"))
    found = sections(write_report(run, tmp_path / "out" / "r.html", max_points=60, num_queries=3).read_text())
    assert section_image(found["training"]) is None and "contrastkit train" in found["training"]
    assert section_image(found["knn"]) is None and "monitor.every_n_epochs" in found["knn"]
    for sid in ("map", "neighbours", "similarity", "health"):
        assert_not_trivial(section_image(found[sid]))
    assert "not logged" in found["health"] or "monitor was off" in found["health"]


def test_unlabelled_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for i in range(48):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "images" / f"{i}.png")
    config = tiny_config(
        tmp_path / "runs",
        f"data.path={tmp_path / 'images'}",
        "data.image_size=16",
        "data.batch_size=16",
        "trainer.max_epochs=1",
        "monitor.every_n_epochs=1",
        "monitor.query_size=16",
    )
    run_dir = train(config).run_dir
    found = sections(write_report(run_dir, max_points=16, num_queries=2, num_neighbours=3).read_text())
    assert "no labels" in found["map"] and "no labels" in found["neighbours"]
    for sid in ("training", "map", "neighbours", "similarity", "health"):
        assert_not_trivial(section_image(found[sid]))
    assert section_image(found["knn"]) is None  # no labels: no online kNN


def test_missing_run_dir_config_and_encoder_are_named(reported_run, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist: run `contrastkit train` first"):
        write_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing.*contrastkit train"):
        write_report(tmp_path / "empty")
    run = tmp_path / "unfinished"
    shutil.copytree(reported_run.run_dir, run, ignore=shutil.ignore_patterns("encoder.*", "report.html"))
    with pytest.raises(FileNotFoundError, match=r"encoder\.safetensors is missing: the run did not finish.*export"):
        write_report(run)
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(FileNotFoundError, match=r"encoder\.safetensors is missing"):
        write_report(run)


def test_cli_writes_the_report_and_prints_its_path(reported_run, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", str(reported_run.run_dir), "--out", str(out), "--max-points", "40"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert set(sections(out.read_text())) == set(SECTION_IDS)
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "contrastkit report: error:" in err and "contrastkit train" in err


def test_matplotlib_is_imported_by_the_report_only():
    code = (
        "import sys, contrastkit, contrastkit.losses, contrastkit.heads, contrastkit.views, contrastkit.eval, "
        "contrastkit.cli.main; assert 'matplotlib' not in sys.modules; "
        "import contrastkit.report; assert 'matplotlib' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_text_pairs_run_reports_its_curves_and_before_after_table(tmp_path, doc_pairs_file):
    """A text run has no images: the image sections say so, the retrieval table is shown."""
    import json

    from contrastkit.cli.main import main
    from contrastkit.report import write_report

    pairs = doc_pairs_file
    mining = {"anchors": 804, "corpus": 700, "rows": 790, "without_negative": 3, "below_window": 41,
              "filtered": {"above relative margin": 1234}, "positive_scores": [0.1, 0.4, 0.5, 0.6, 0.9],
              "negative_scores": [0.2, 0.35, 0.4, 0.45, 0.6],
              "settings": {"range": [10, 50], "num_negatives": 1, "max_score": None, "relative_margin": 0.95,
                           "encoder": "minilm.safetensors"}}  # fmt: skip
    (tmp_path / "pairs.jsonl.mining.json").write_text(json.dumps(mining))  # as mine-negatives writes beside its output
    args = ["train", "text-pairs", f"data.path={pairs}", f"out_dir={tmp_path}", "data.batch_size=8",
            "data.train_fraction=0.05", "trainer.max_steps=3", "final_eval.test_size=20",
            "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]  # fmt: skip
    assert main(args) == 0
    page = write_report(tmp_path / "text-pairs").read_text()
    assert "a text run (no images)" in page
    assert "retrieval on 20 held-out pairs" in page
    after = json.loads((tmp_path / "text-pairs" / "final_eval.json").read_text())["after"]["mrr"]
    assert f"{after:.4g}" in page  # as the page prints it
    assert "Hard-negative mining of the training pairs" in page
    for shown in ("804 / 700", "skipped: above relative margin</td><td class=\"num\">1234",
                  "below the window</td><td class=\"num\">41",
                  "0.200 / 0.350 / 0.400 / 0.450 / 0.600", "[10, 50], 1"):  # fmt: skip
        assert shown in page
