"""contrastkit finetune end to end on digits: the table's numbers, the files, the exported classifier, predict."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import contrastkit
from contrastkit.backbones import create_backbone
from contrastkit.backbones.encoder_file import EncoderFileError, save_encoder
from contrastkit.cli.main import main
from contrastkit.data import load_dataset
from contrastkit.eval.linear_probe import fit_linear_probe, fit_logistic_regression
from contrastkit.finetuning import Classifier, FinetuneConfig, finetune, load_classifier, predict_images
from contrastkit.finetuning.lit_classifier import LitClassifier
from contrastkit.views.supervised_views import SupervisedViews

INFO = {"backbone": "small_cnn", "in_chans": 1, "input_size": 8, "mean": [0.5], "std": [0.5], "small_input": True}


@pytest.fixture(scope="module")
def encoder_path(tmp_path_factory):
    torch.manual_seed(0)
    backbone = create_backbone("small_cnn", in_chans=1, small_input=True).eval()
    return save_encoder(backbone, tmp_path_factory.mktemp("enc") / "encoder.safetensors", dict(INFO))


@pytest.fixture(scope="module")
def run(encoder_path, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ft") / "run"
    config = FinetuneConfig(labels_per_class=5, epochs=3, batch_size=16, seed=1)
    return finetune(encoder_path, "digits", config, run_dir=run_dir, accelerator="cpu"), run_dir


def test_the_table_is_what_the_exported_classifier_scores_on_the_test_split(run):
    result, run_dir = run
    test = load_dataset("digits", split="test")
    assert result.test_images == len(test) and result.labelled_images == 50
    classifier = load_classifier(run_dir / "classifier.safetensors")
    predicted = predict_images(classifier, test.images, classifier.info).argmax(1)
    assert float((predicted == test.targets).float().mean()) == pytest.approx(result.finetuned, abs=1e-6)
    confusion = np.array(result.confusion)  # rows: true class, columns: predicted
    assert confusion.sum() == len(test) and confusion.sum(1).tolist() == torch.bincount(test.targets).tolist()
    assert np.trace(confusion) / confusion.sum() == pytest.approx(result.finetuned, abs=1e-6)
    assert 0 <= result.scratch <= 1 and 0 <= result.linear_probe <= 1 and result.zero_shot is None
    assert classifier.info["classes"] == test.classes and classifier.info["input_size"] == 8


def test_the_linear_probe_row_is_a_logistic_regression_on_the_frozen_features(run, encoder_path):
    result, run_dir = run
    indices = json.loads((run_dir / "labelled_indices.json").read_text())["indices"]
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    assert np.bincount(train.targets[indices].numpy()).tolist() == [5] * 10  # the draw saved with the run
    encoder = contrastkit.load_encoder(encoder_path)
    with torch.no_grad():  # features written out here: (x / 255 - 0.5) / 0.5 at 8x8
        f_train = encoder((train.images[indices].float() / 255 - 0.5) / 0.5)
        f_test = encoder((test.images.float() / 255 - 0.5) / 0.5)
    probe = fit_linear_probe(f_train, train.targets[indices], 10, seed=1)
    mean, std = f_train.mean(0), f_train.std(0, unbiased=False).clamp_min(1e-8)  # the same fit, standardised
    w = fit_logistic_regression((f_train - mean) / std, train.targets[indices], 10, probe.weight_decay)
    standardised = ((f_test - mean) / std) @ w[:-1] + w[-1]
    folded = f_test @ probe.weight.t() + probe.bias  # the probe's weights act on raw features
    torch.testing.assert_close(folded, standardised, atol=1e-3, rtol=1e-3)
    accuracy = float((standardised.argmax(1) == test.targets).float().mean())
    assert result.linear_probe == pytest.approx(accuracy, abs=2 / len(test))


def test_run_files_and_report(run):
    result, run_dir = run
    summary = json.loads((run_dir / "finetune.json").read_text())
    assert summary["finetuned"] == result.finetuned and summary["config"]["labels_per_class"] == 5
    page = (run_dir / "report.html").read_text()
    assert 'class="confusion"' in page and "from scratch, same labels and budget" in page
    assert json.loads((run_dir / "classifier.json").read_text())["format"] == "contrastkit-classifier"


def test_an_existing_run_folder_is_refused_and_left_alone(run, encoder_path):
    _, run_dir = run
    before = (run_dir / "classifier.safetensors").read_bytes()
    with pytest.raises(ValueError, match="holds an earlier output"):
        finetune(encoder_path, "digits", FinetuneConfig(labels_per_class=5), run_dir=run_dir)
    assert (run_dir / "classifier.safetensors").read_bytes() == before


def test_freeze_keeps_the_encoder_and_fine_tuning_keeps_its_batch_norm_statistics(encoder_path, tmp_path):
    original = contrastkit.load_encoder(encoder_path).model.state_dict()  # the file's keys
    config = FinetuneConfig(labels_per_class=5, epochs=2, batch_size=16, freeze=True, scratch=False)
    result = finetune(encoder_path, "digits", config, run_dir=tmp_path / "frozen", accelerator="cpu")
    assert result.finetuned is None and result.scratch is None
    frozen = load_classifier(tmp_path / "frozen" / "classifier.safetensors").encoder.state_dict()
    assert all(torch.equal(frozen[k], v) for k, v in original.items())
    config = FinetuneConfig(labels_per_class=5, epochs=2, batch_size=16, scratch=False)
    finetune(encoder_path, "digits", config, run_dir=tmp_path / "tuned", accelerator="cpu")
    tuned = load_classifier(tmp_path / "tuned" / "classifier.safetensors").encoder.state_dict()
    stats = [k for k in original if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in original if k.endswith("weight")]
    assert stats and all(torch.equal(tuned[k], original[k]) for k in stats)
    assert any(not torch.equal(tuned[k], original[k]) for k in weights)


def test_the_encoder_learns_at_a_fraction_of_the_heads_rate():
    model = Classifier(create_backbone("small_cnn", in_chans=1, small_input=True), 10)
    config = FinetuneConfig(labels_per_class=5, lr=2e-3, warmup_fraction=0.0)
    module = LitClassifier(model, SupervisedViews(8, 1), 2e-3, 2e-3 * 0.1, config, total_steps=10)
    optimizer = module.configure_optimizers()["optimizer"]
    head = {id(p) for p in model.head.parameters()}
    for group in optimizer.param_groups:
        is_head = {id(p) in head for p in group["params"]}
        assert len(is_head) == 1  # no group mixes head and encoder
        assert group["lr"] == pytest.approx(2e-3 if is_head.pop() else 2e-4)
    counted = sum(len(g["params"]) for g in optimizer.param_groups)
    assert counted == len(list(model.parameters()))


def test_bad_settings_are_refused_before_any_data_is_read(encoder_path):
    with pytest.raises(ValueError, match="labels_per_class must be >= 1"):
        finetune(encoder_path, "no-such-data", FinetuneConfig(labels_per_class=0))
    with pytest.raises(ValueError, match="exactly one"):
        finetune(encoder_path, "no-such-data", FinetuneConfig())


def test_cli_finetune_and_predict(encoder_path, tmp_path, capsys):
    rc = main(
        [
            "finetune", str(encoder_path), "--data", "digits", "--labels-per-class", "3", "--epochs", "1",
            "--out-dir", str(tmp_path), "--name", "cli", "--no-scratch",
        ]
    )  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "fine-tuned (LP-FT)" in out and "from scratch" not in out and str(tmp_path / "cli") in out
    from PIL import Image

    test = load_dataset("digits", split="test")
    images = tmp_path / "images"
    (images / "nested").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(test.images[i, 0].numpy()).save(images / "nested" / f"{i}.png")
    (images / "broken.png").write_bytes(b"not an image")
    classifier = tmp_path / "cli" / "classifier.safetensors"
    assert main(["predict", str(classifier), str(images), "--out", str(tmp_path / "p.csv")]) == 0
    captured = capsys.readouterr()
    assert "wrote 4 predictions" in captured.out and "broken.png: " in captured.err
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    model = load_classifier(classifier)
    expected = predict_images(model, test.images[:4], model.info)
    for row in rows:
        i = int(row["path"].rsplit("/", 1)[1].split(".")[0])
        assert row["class"] == test.classes[int(expected[i].argmax())]
        assert float(row["probability"]) == pytest.approx(float(expected[i].max()), abs=1e-5)
    # a JPEG far larger than the classifier's input (8 px): predicted from its decode at 1/8 scale
    from contrastkit.data.decode_image import decode_image
    from contrastkit.data.resize_center_crop import resize_center_crop

    large = tmp_path / "large"
    large.mkdir()
    Image.fromarray(test.images[5, 0].numpy()).resize((160, 160), Image.NEAREST).save(large / "5.jpg", quality=95)
    assert main(["predict", str(classifier), str(large), "--out", str(tmp_path / "large.csv")]) == 0
    reduced = decode_image((large / "5.jpg").read_bytes(), 1, min_side=8)
    assert reduced.shape == (1, 20, 20)
    expected = predict_images(model, resize_center_crop(reduced, 8)[None], model.info)[0]
    row = next(csv.DictReader(open(tmp_path / "large.csv")))
    assert float(row["probability"]) == pytest.approx(float(expected.max()), abs=1e-5)
    # an encoder file is not a classifier; a bad size is refused with exit 2 and no traceback
    assert main(["predict", str(encoder_path), str(images), "--out", str(tmp_path / "q.csv")]) == 2
    assert "an encoder file" in capsys.readouterr().err
    assert main(["finetune", str(encoder_path), "--data", "digits", "--labels-per-class", "0"]) == 2
    assert "labels_per_class must be >= 1" in capsys.readouterr().err


def test_a_file_that_is_not_a_classifier_is_refused(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(EncoderFileError, match="not a safetensors file"):
        load_classifier(bad)


def test_an_image_text_encoder_starts_from_its_zero_shot_classifier(minilm, tmp_path):
    from contrastkit.eval.zero_shot import zero_shot
    from contrastkit.methods import create_method

    torch.manual_seed(0)
    method = create_method("clip", create_backbone("small_cnn", in_chans=1, small_input=True), embed_dim=64)
    module, info = method.export_module()
    meta = {**INFO, **info}
    path = save_encoder(module, tmp_path / "clip.safetensors", meta)
    config = FinetuneConfig(labels_per_class=3, epochs=1, batch_size=16, scratch=False)
    result = finetune(path, "digits", config, run_dir=tmp_path / "run", accelerator="cpu")
    test = load_dataset("digits", split="test")
    expected = zero_shot(contrastkit.load_encoder(path), test.images, test.classes, labels=test.targets)
    assert result.zero_shot == pytest.approx(expected.top1, abs=1e-6)
    assert "zero-shot (class names only)" in result.table()
    classifier = load_classifier(tmp_path / "run" / "classifier.safetensors")  # rebuilt without the text tower
    assert not any(k.startswith("text") for k in classifier.state_dict())
    probs = predict_images(classifier, test.images, classifier.info)
    assert float((probs.argmax(1) == test.targets).float().mean()) == pytest.approx(result.finetuned, abs=1e-6)


def test_input_size_feeds_the_encoder_at_another_size_and_the_classifier_keeps_it(encoder_path, tmp_path):
    """A network pretrained at one size runs at another (the Lite0 rows: 224 px weights at 64 px): the probe, the
    fine-tuning and the exported classifier all use the size asked for, and predict reads it from the file."""
    config = FinetuneConfig(labels_per_class=3, epochs=1, batch_size=16, input_size=12, scratch=False)
    result = finetune(encoder_path, "digits", config, run_dir=tmp_path / "ft12", accelerator="cpu")
    model = load_classifier(tmp_path / "ft12" / "classifier.safetensors")
    assert model.info["input_size"] == 12 and contrastkit.load_encoder(encoder_path).encoder_info["input_size"] == 8
    test = load_dataset("digits", split="test")
    predicted = predict_images(model, test.images, model.info).argmax(dim=1)
    assert float((predicted == test.targets).float().mean()) == pytest.approx(result.finetuned)
    with pytest.raises(ValueError, match=r"input_size must be in \[8, 1024\]"):
        finetune(encoder_path, "no-such-data", FinetuneConfig(labels_per_class=3, input_size=4))
