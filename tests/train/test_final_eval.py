"""The final table of a run: with data.classes, kNN and linear probe are scored on the classes they were trained on."""

from __future__ import annotations

import torch

from contrastkit.data import load_dataset
from contrastkit.train.fit import train
from tests.train.helpers import tiny_config

SEEN = ["0", "1", "2", "3", "4"]


def test_probes_are_scored_on_the_seen_classes(tmp_path, capsys):
    config = tiny_config(
        tmp_path,
        "trainer.max_epochs=1",
        "final_eval.enabled=true",
        "final_eval.train_size=300",
        "final_eval.knn_bank_size=5000",  # more than there are: the bank is every seen-class training image
        f"data.classes=[{','.join(SEEN)}]",
    )
    result = train(config).final_eval
    test = load_dataset("digits", split="test")
    seen_ids = torch.tensor([test.classes.index(c) for c in SEEN])
    assert result["test_images"] == int(torch.isin(test.targets, seen_ids).sum())  # all held-out images of 5 classes
    assert result["classes"] == SEEN
    train_targets = load_dataset("digits", split="train").targets
    assert result["knn_bank_images"] == int(torch.isin(train_targets, seen_ids).sum())
    assert result["train_images"] == 300  # the probes fit the first 300 of the bank
    pixels = next(r for r in result["rows"] if r["encoder"] == "raw pixels")
    # 5 of 10 classes: scoring on all classes would cap every accuracy at ~0.5; raw pixels separate digits well
    assert pixels["linear_probe"] > 0.9 and pixels["knn_top1"] > 0.9
    out = capsys.readouterr().out
    assert "held-out images of the 5 classes trained on (probes fitted on 300 training images" in out
    assert f"over {result['knn_bank_images']} training images" in out
