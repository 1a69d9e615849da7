"""Few-shot text classification: `contrastkit finetune ENCODER --data texts.jsonl` (contrastive stage with our
losses, then logistic regression), `contrastkit predict RUN texts`, the batches each objective trains on, and every
bad input refused in one line with nothing written. Real data: WordNet definitions of four semantic categories
(pinned in tests/data/wordnet_categories_small.jsonl, 20 per class)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from contrastkit.backbones import save_encoder
from contrastkit.backbones.encoder_file import load_encoder
from contrastkit.cli.main import main
from contrastkit.finetuning.classifier import load_classifier, text_tower_of
from contrastkit.finetuning.finetune_texts import finetune_texts
from contrastkit.finetuning.labelled_texts import read_labelled_texts
from contrastkit.finetuning.text_finetune import embed_texts, lp_ft, predict_texts, supcon_batches, triplet_batches
from contrastkit.finetuning.text_finetune_config import TextFinetuneConfig

DATA = Path(__file__).parents[1] / "data" / "wordnet_categories_small.jsonl"
QUICK = TextFinetuneConfig(epochs=3, batch_size=16, lr=5e-5)


@pytest.fixture(scope="module")
def files(tmp_path_factory, minilm):
    folder = tmp_path_factory.mktemp("texts")
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    train, test = [], []
    for label in sorted({r["label"] for r in rows}):
        of_class = [r for r in rows if r["label"] == label]
        train += of_class[:8]
        test += of_class[8:]
    for name, part in (("train.jsonl", train), ("test.jsonl", test)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    encoder = save_encoder(minilm, folder / "minilm.safetensors", {"kind": "text", "text_encoder": minilm.text_config})
    return folder, encoder


def test_finetune_trains_contrastively_then_a_head_and_scores_three_rows(files, tmp_path):
    folder, encoder = files
    result = finetune_texts(encoder, folder / "train.jsonl", QUICK, test=folder / "test.jsonl", run_dir=tmp_path / "r")
    assert result.labelled_texts == 32 and result.test_texts == 48 and len(result.classes) == 4
    assert result.losses[-1] < result.losses[0]  # stage 1 learns
    assert result.linear_probe > 0.6 and result.finetuned > 0.6  # four categories: chance is 0.25
    # TF-IDF + logistic regression, written out here with scikit-learn
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train = read_labelled_texts(folder / "train.jsonl")
    test = read_labelled_texts(folder / "test.jsonl")
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=0)
    model.fit(vectorizer.fit_transform(train.texts), train.labels)
    expected = float(np.mean(model.predict(vectorizer.transform(test.texts)) == np.array(test.labels)))
    assert result.tfidf == pytest.approx(expected)
    # the confusion matrix is the exported classifier's, on the test texts
    confusion = np.array(result.confusion)
    assert confusion.sum() == 48 and np.trace(confusion) / 48 == pytest.approx(result.finetuned)
    # the classifier file reloads and predicts what the run scored
    classifier = load_classifier(result.classifier_path)
    assert classifier.info["inputs"] == "text" and classifier.info["classes"] == result.classes
    predicted = predict_texts(classifier, test.texts).argmax(1)
    truth = torch.tensor([result.classes.index(y) for y in test.labels])
    assert float((predicted == truth).float().mean()) == pytest.approx(result.finetuned)
    written = json.loads((tmp_path / "r" / "finetune.json").read_text(encoding="utf-8"))
    assert written["finetuned"] == result.finetuned and len(written["losses"]) == len(result.losses)
    assert "Confusion matrix" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".r.partial"))


def test_the_objectives_batches_hold_what_their_loss_needs():
    labels = np.repeat(np.arange(5), [2, 3, 8, 4, 7])
    rng = np.random.default_rng(0)
    batches = list(supcon_batches(labels, 8, rng))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(labels)))  # every row once per epoch
    for batch in batches:  # every row has another of its class in its batch (a positive for SupCon)
        for row in batch:
            assert (labels[batch] == labels[row]).sum() >= 2
    anchors = []
    for a, p, n in triplet_batches(labels, 4, rng):
        assert len(set(labels[a].tolist())) == len(a)  # distinct classes: no in-batch false negative
        assert (labels[p] == labels[a]).all() and (p != a).all() and (labels[n] != labels[a]).all()
        anchors += a.tolist()
    assert sorted(anchors) == list(range(len(labels)))  # every row an anchor once


def test_lp_ft_starts_from_a_probe_and_trains_encoder_and_head_with_cross_entropy(files):
    train = read_labelled_texts(files[0] / "train.jsonl")
    labels = train.ids(train.classes())
    tower = text_tower_of(load_encoder(files[1]))
    z = embed_texts(tower, train.texts).double()  # (32, 384) before LP-FT
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    config = TextFinetuneConfig(batch_size=8, head_epochs=4, lr=5e-5, head="lp-ft")  # 4 steps per epoch
    classifier, losses = lp_ft(tower, train.texts, labels, 4, config)
    assert len(losses) == 16 and np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4])  # cross-entropy falls
    # the probe LP-FT starts from: scikit-learn's default logistic regression (C = 1) on the embeddings
    from sklearn.linear_model import LogisticRegression

    reference = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(z.numpy(), labels)
    logits = z @ torch.from_numpy(reference.coef_).t() + torch.from_numpy(reference.intercept_)  # (32, 4)
    probe_ce = float((logits.logsumexp(1) - logits[torch.arange(32), torch.as_tensor(labels)]).mean())
    assert abs(losses[0] - probe_ce) < 0.1  # the first batch's loss is the probe's (dropout and the batch aside)
    assert classifier.encoder is tower and not classifier.training
    after = tower.state_dict()
    assert sum(not torch.equal(after[k], before[k]) for k in before) > 10  # the encoder trained with the head
    trained = (embed_texts(tower, train.texts) @ classifier.head.weight.t() + classifier.head.bias).argmax(1)
    assert float((trained == torch.as_tensor(labels)).float().mean()) >= 0.9  # and fits the labels it saw


def test_the_command_line_trains_predicts_and_scores_a_labelled_file(files, tmp_path, capsys):
    folder, encoder = files
    run = tmp_path / "run"
    args = ["finetune", str(encoder), "--data", str(folder / "train.jsonl"), "--test", str(folder / "test.jsonl"),
            "--out", str(run), "--epochs", "1", "--objective", "supcon", "--batch-size", "4"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "TF-IDF" in printed and "fine-tuned (contrastive" in printed and "32 labelled texts" in printed
    assert main(["predict", str(run), str(folder / "test.jsonl"), "--out", str(tmp_path / "p.csv")]) == 0
    printed = capsys.readouterr().out
    with open(tmp_path / "p.csv", encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 48 and table[0]["text"] == read_labelled_texts(folder / "test.jsonl").texts[0]
    classes = json.loads((run / "classifier.json").read_text(encoding="utf-8"))["classes"]
    for row in table:
        probabilities = [float(row[f"p_{c}"]) for c in classes]
        assert sum(probabilities) == pytest.approx(1, abs=1e-4) and row["class"] == classes[np.argmax(probabilities)]
    labels = read_labelled_texts(folder / "test.jsonl").labels
    right = np.mean([r["class"] == y for r, y in zip(table, labels, strict=True)])
    assert f"accuracy against the file's labels: {right:.4f}" in printed
    (tmp_path / "plain.txt").write_text("a small domesticated feline\nbread baked with raisins\n", encoding="utf-8")
    assert main(["predict", str(run / "classifier.safetensors"), str(tmp_path / "plain.txt"),
                 "--out", str(tmp_path / "q.csv")]) == 0  # fmt: skip
    assert len((tmp_path / "q.csv").read_text(encoding="utf-8").splitlines()) == 3
    assert main(args) == 2 and "holds an earlier output" in capsys.readouterr().err  # never replaced by accident
    assert main([*args[:-6], "--epochs", "1", "--head", "lp-ft", "--no-scratch", "--overwrite"]) == 0
    printed = capsys.readouterr().out
    assert "fine-tuned (contrastive, then LP-FT)" in printed and "TF-IDF" not in printed
    assert json.loads((run / "finetune.json").read_text(encoding="utf-8"))["config"]["head"] == "lp-ft"


def _bad(tmp_path, name, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "is empty"),
        ("one.jsonl", '{"text": "a cat", "label": "a"}\n{"text": "a dog", "label": "a"}\n'
                      '{"text": "a car", "label": "b"}\n', "class 'b' has 1 example"),
        ("field.jsonl", '{"text": "a cat", "label": "a"}\n{"sentence": "a dog", "label": "a"}\n',
         "line 2 has no field 'text'"),
        ("latin1.csv", b"text,label\ncaf\xe9 au lait,drink\n", "line 2, column 4 is not UTF-8"),
        ("rows.tsv", "text\tlabel\n\tx\n", "line 2: the text ('text') is empty"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, capsys, name, content, message):
    _, encoder = files
    data = _bad(tmp_path, name, content)
    run = tmp_path / "run"
    assert main(["finetune", str(encoder), "--data", str(data), "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(data) in err[0], err
    assert not run.exists() and not list(tmp_path.glob(".*partial"))


def test_labels_never_seen_in_training_are_refused_by_finetune_and_predict(files, tmp_path, capsys):
    folder, encoder = files
    unseen = _bad(tmp_path, "test.jsonl", '{"text": "a lovely tune", "label": "noun.music"}\n')
    run = tmp_path / "run"
    args = ["finetune", str(encoder), "--data", str(folder / "train.jsonl"), "--test", str(unseen), "--out", str(run)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "label 'noun.music', never seen in training" in err and not run.exists()
    trained = tmp_path / "trained"
    assert main([*args[:4], "--out", str(trained), "--epochs", "1", "--no-scratch"]) == 0
    capsys.readouterr()
    assert main(["predict", str(trained), str(unseen), "--out", str(tmp_path / "p.csv")]) == 2
    assert "never seen in training" in capsys.readouterr().err and not (tmp_path / "p.csv").exists()


def test_other_field_names_and_csv(files, tmp_path, capsys):
    folder, encoder = files
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(tmp_path / "train.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["definition", "category"])
        writer.writerows([r["text"], r["label"]] for r in rows)
    args = ["finetune", str(encoder), "--data", str(tmp_path / "train.csv"), "--text-field", "definition",
            "--label-field", "category", "--freeze", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0  # a fifth of each class held out for testing
    printed = capsys.readouterr().out
    assert "24 labelled texts" in printed and "8 texts held out for testing" in printed
    assert "fine-tuned" not in printed  # --freeze: the probe only


def test_image_only_flags_are_refused_for_texts(files, tmp_path, capsys):
    folder, encoder = files
    base = ["finetune", str(encoder), "--data", str(folder / "train.jsonl"), "--out", str(tmp_path / "run")]
    for flag, value in (("--input-size", "64"), ("--label-fraction", "0.5")):
        assert main([*base, flag, value]) == 2
        assert f"{flag} is for images" in capsys.readouterr().err
    assert main(["finetune", str(encoder), "--data", "digits", "--labels-per-class", "2", "--head", "lp-ft",
                 "--out", str(tmp_path / "run")]) == 2  # fmt: skip
    assert "--head is for labelled texts" in capsys.readouterr().err
    assert main([*base, "--freeze", "--head", "lp-ft"]) == 2  # refused before anything is read
    assert "head 'lp-ft' trains the encoder, freeze keeps it frozen" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
