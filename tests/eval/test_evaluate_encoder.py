"""`contrastkit eval`: one table, the encoder next to random init and raw pixels; numbers match the functions."""

from __future__ import annotations

import json

import pytest
import torch

import contrastkit
from contrastkit.backbones import create_backbone, save_encoder
from contrastkit.cli.main import main
from contrastkit.data import load_dataset
from contrastkit.eval import embed_images, evaluate_encoder, format_report, knn_accuracy


@pytest.fixture
def encoder_file(tmp_path):
    torch.manual_seed(1)
    backbone = create_backbone("small_cnn", in_chans=1, widths=(4, 8, 16))
    info = {
        "backbone": "small_cnn",
        "in_chans": 1,
        "small_input": False,
        "input_size": 8,
        "mean": [0.5],
        "std": [0.5],
        "method": "simclr",
        "backbone_kwargs": {"widths": [4, 8, 16]},
    }
    return save_encoder(backbone.eval(), tmp_path / "enc.safetensors", info)


def test_rows_agree_with_the_metric_functions(encoder_file):
    encoder = contrastkit.load_encoder(encoder_file)
    train_set, test_set = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    train = (train_set.images[:300], train_set.targets[:300])
    test = (test_set.images[:100], test_set.targets[:100])
    result = evaluate_encoder(encoder, train, test, random_init=None, k=20)
    assert [r["encoder"] for r in result["rows"]] == ["simclr (small_cnn)", "raw pixels"]
    features = [embed_images(encoder, x, (0.5,), (0.5,), 8) for x in (train[0], test[0])]
    expected = knn_accuracy(features[0], train[1], features[1], test[1], k=20)
    assert result["rows"][0]["knn_top1"] == pytest.approx(expected.top1)
    assert result["rows"][1]["knn_top1"] > 0.8  # raw digit pixels are a strong floor (10 classes: chance 0.1)
    assert 0.0 <= result["rows"][0]["alignment"] <= 4.0 and "alignment" not in result["rows"][1]
    table = format_report(result)
    assert "raw pixels" in table and "kNN@1" in table


def test_cli_prints_the_table_and_writes_json(encoder_file, tmp_path, capsys):
    out = tmp_path / "eval.json"
    args = ["eval", str(encoder_file), "--data", "digits", "--train-size", "300", "--test-size", "100", "--k", "20"]
    assert main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "random init" in printed and "raw pixels" in printed
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 3 and all(0.0 <= r["linear_probe"] <= 1.0 for r in rows)


def test_knn_and_probe_is_the_knn_over_the_whole_bank_and_the_probe_on_its_first_rows():
    from contrastkit.eval import knn_accuracy, knn_and_probe, linear_probe

    gen = torch.Generator().manual_seed(0)
    y_train, y_test = torch.randint(0, 3, (300,), generator=gen), torch.randint(0, 3, (90,), generator=gen)
    centres = torch.randn(3, 8, generator=gen) * 2
    f_train = centres[y_train] + torch.randn(300, 8, generator=gen)  # (300, 8)
    f_test = centres[y_test] + torch.randn(90, 8, generator=gen)  # (90, 8)
    row = knn_and_probe(f_train, y_train, f_test, y_test, k=20, temperature=0.07, probe_size=120, seed=3)
    knn = knn_accuracy(f_train, y_train, f_test, y_test, k=20, temperature=0.07)
    probe = linear_probe(f_train[:120], y_train[:120], f_test, y_test, seed=3)
    assert row == {
        "dim": 8,
        "knn_top1": knn.top1,
        "knn_top5": knn.top5,
        "linear_probe": probe.accuracy,
        "linear_probe_weight_decay": probe.weight_decay,
    }
    few = knn_and_probe(f_train, y_train, f_test, y_test, k=20, probe_size=12)
    assert few["linear_probe"] == linear_probe(f_train[:12], y_train[:12], f_test, y_test).accuracy
    assert few["knn_top1"] == knn_accuracy(f_train, y_train, f_test, y_test, k=20).top1  # the whole bank still
