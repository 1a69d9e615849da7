"""Few-shot text classification: `contrastkit finetune` against SetFit and the baselines, same labels, same body.

Two real offline corpora, both WordNet 3.0 definitions labelled by their semantic category
(``contrastkit.data.wordnet_categories``; Debian package ``wordnet-base``): 25 noun classes (noun.animal,
noun.artifact, noun.feeling, ...) and 15 verb classes (verb.motion, verb.communication, ...). A fixed test split per
corpus (up to 80 definitions per class, seed 0; never drawn as labels), then 3 label draws of 8 definitions per class
from the rest. Rows, each on exactly the same labelled texts, in one run on one machine:

- TF-IDF + logistic regression (word uni- and bigrams): no pretraining;
- frozen all-MiniLM-L6-v2 + logistic regression (contrastkit's linear-probe row);
- SetFit 1.x with its defaults (the real ``setfit`` package: oversampled pairs, CosineSimilarityLoss, 1 epoch, then
  logistic regression), all-MiniLM-L6-v2 body;
- ``contrastkit finetune`` with all-MiniLM-L6-v2, each stage-1 objective (supcon, triplets), and triplets with
  stage 2 as LP-FT (``--head lp-ft``) instead of logistic regression;
- ``contrastkit finetune`` with all-mpnet-base-v2 (``make models``), the defaults.

Time is wall time of training plus predicting the test texts (contrastkit: stage 1, stage 2 and the test
predictions; the frozen probe it also reports is not counted). Goals (issue 24): contrastkit >= SetFit's accuracy at
<= 0.5x its time; >= the frozen probe + 3 points; >= TF-IDF + 15 points.

    python benchmarks/fewshot_text.py          # both corpora, 3 draws (SetFit alone: ~27 min per draw, 2 cores)
    python benchmarks/fewshot_text.py --corpus noun --draws 1 --no-setfit
    python benchmarks/fewshot_text.py --corpus noun --setfit-draws 1     # SetFit on draw 0 only (~45 minutes)
    python benchmarks/fewshot_text.py --corpus noun --rows probe,triplets,lp-ft   # some rows only
    python benchmarks/fewshot_text.py --corpus verb --rows setfit --draw 1 --draw 2   # some draws only
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # SetFit's trainer draws a progress bar per step

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from contrastkit.backbones import save_encoder
from contrastkit.backbones.dual_encoder import create_text_encoder
from contrastkit.backbones.minilm_text_encoder import minilm_path
from contrastkit.data.wordnet_categories import wordnet_categories
from contrastkit.finetuning.classifier import TextTower
from contrastkit.finetuning.finetune_texts import finetune_texts
from contrastkit.finetuning.labelled_texts import LabelledTexts
from contrastkit.finetuning.text_finetune import TextSplit, predict_texts, probe_classifier, tfidf_accuracy
from contrastkit.finetuning.text_finetune_config import TextFinetuneConfig

ROOT = Path(__file__).resolve().parents[1]
MPNET = ROOT / "models" / "all-mpnet-base-v2.safetensors"  # written by `make models`
TEST_PER_CLASS, MIN_POOL, LABELS_PER_CLASS = 80, 16, 8
ROWS = ("tfidf", "probe", "setfit", "supcon", "triplets", "lp-ft", "mpnet")  # --rows names, in the table's order


def corpus(pos: str) -> tuple[LabelledTexts, LabelledTexts]:
    """(pool to draw labels from, fixed test texts) of WordNet's ``pos`` definitions."""
    rows = wordnet_categories(pos)
    rng = np.random.default_rng(0)
    labels = np.array([r["label"] for r in rows])
    pool, test = [], []
    for label in sorted(set(labels)):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = min(TEST_PER_CLASS, len(members) - MIN_POOL)
        test += members[:cut].tolist()
        pool += members[cut:].tolist()

    def texts(rows_: list[int], name: str) -> LabelledTexts:
        return LabelledTexts([rows[i]["text"] for i in rows_], [rows[i]["label"] for i in rows_], name)

    return texts(sorted(pool), f"wordnet-{pos}s pool"), texts(sorted(test), f"wordnet-{pos}s test")


def draw(pool: LabelledTexts, seed: int) -> LabelledTexts:
    rng = np.random.default_rng(1000 + seed)
    labels = np.array(pool.labels)
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), LABELS_PER_CLASS, replace=False) for c in sorted(set(labels))]
    )
    return pool.subset(np.sort(rows), f"{pool.source} draw {seed}")


def setfit_row(train: LabelledTexts, test: LabelledTexts, seed: int) -> tuple[float, float]:
    """SetFit 1.x with its default TrainingArguments (only the seed set), all-MiniLM-L6-v2 body."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    start = time.perf_counter()
    model = SetFitModel.from_pretrained(str(minilm_path()), device="cpu")
    output_dir = tempfile.mkdtemp(prefix="setfit-")  # its checkpoints, not in the current folder
    args = TrainingArguments(seed=seed, report_to="none", show_progress_bar=False, output_dir=output_dir)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": train.texts,
                                                                               "label": train.labels}))  # fmt: skip
    trainer.train()
    predicted = model.predict(test.texts, batch_size=128, as_numpy=True)
    seconds = time.perf_counter() - start
    return float(np.mean(np.asarray(predicted) == np.array(test.labels))), seconds


def contrastkit_row(encoder: Path, train: LabelledTexts, test: LabelledTexts, config: TextFinetuneConfig):
    result = finetune_texts(encoder, train, config, test=test)
    return float(result.finetuned), result.seconds["fine-tuning"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("noun", "verb"), action="append", help="default both")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--draw", type=int, action="append", help="run only this draw (repeatable; default all)")
    parser.add_argument("--no-setfit", action="store_true")
    parser.add_argument(
        "--setfit-draws", type=int, default=None, help="SetFit on the first N draws only (its default run is ~25 min)"
    )
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)} (default all)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "fewshot_text.json"))
    args = parser.parse_args()
    wanted = set(args.rows.split(","))
    if wanted - set(ROWS):
        parser.error(f"--rows: unknown {', '.join(sorted(wanted - set(ROWS)))} (of {', '.join(ROWS)})")
    torch.set_num_threads(int(os.environ.get("CONTRASTKIT_THREADS", "2")))
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "contrastkit-fewshot"
    work.mkdir(parents=True, exist_ok=True)
    minilm = create_text_encoder("minilm", max_length=128).eval()
    minilm_file = save_encoder(
        minilm, work / "minilm.safetensors", {"kind": "text", "text_encoder": minilm.text_config}
    )
    rows: dict[str, dict[str, list]] = {}

    def record(corpus_name: str, row: str, accuracy: float, seconds: float | None) -> None:
        entry = rows.setdefault(corpus_name, {}).setdefault(row, {"accuracy": [], "seconds": []})
        entry["accuracy"].append(accuracy)
        entry["seconds"].append(seconds)
        shown = "" if seconds is None else f"  {seconds:7.1f} s"
        print(f"  {row:<44} {accuracy:.4f}{shown}", flush=True)

    for pos in args.corpus or ["noun", "verb"]:
        pool, test = corpus(pos)
        name = f"wordnet-{pos}s ({len(set(test.labels))} classes, {len(test)} test texts)"
        for seed in args.draw or range(args.draws):
            train = draw(pool, seed)
            print(f"{name}, draw {seed}: {len(train)} labelled texts", flush=True)
            classes = train.classes()
            split = TextSplit(train.texts, train.ids(classes), test.texts, test.ids(classes), classes, test.source)
            if "tfidf" in wanted:
                start = time.perf_counter()
                record(name, "TF-IDF + logistic regression", tfidf_accuracy(split, seed), time.perf_counter() - start)
            if "probe" in wanted:
                start = time.perf_counter()
                probe = probe_classifier(TextTower(minilm), split.train_texts, split.train_labels, len(classes), seed)
                predicted = predict_texts(probe, test.texts).argmax(1)
                accuracy = float((predicted == torch.as_tensor(split.test_labels)).float().mean())
                record(name, "frozen MiniLM + logistic regression", accuracy, time.perf_counter() - start)
            setfit_draws = args.draws if args.setfit_draws is None else args.setfit_draws
            if "setfit" in wanted and not args.no_setfit and seed < setfit_draws:
                record(name, "SetFit 1.x defaults, MiniLM", *setfit_row(train, test, seed))
            for key, objective, head in (("supcon", "supcon", "logistic"), ("triplets", "triplets", "logistic"),
                                         ("lp-ft", "triplets", "lp-ft")):  # fmt: skip
                if key in wanted:
                    config = TextFinetuneConfig(seed=seed, objective=objective, head=head, tfidf=False)
                    label = f"contrastkit finetune, MiniLM ({objective}{', LP-FT' if head == 'lp-ft' else ''})"
                    record(name, label, *contrastkit_row(minilm_file, train, test, config))
            if "mpnet" in wanted and MPNET.is_file():
                config = TextFinetuneConfig(seed=seed, tfidf=False)
                record(name, "contrastkit finetune, mpnet", *contrastkit_row(MPNET, train, test, config))
            elif "mpnet" in wanted:
                print(f"  (no {MPNET}: `make models` adds the all-mpnet-base-v2 row)")
    print()
    for corpus_name, table in rows.items():
        print(corpus_name)
        print(f"  {'row':<44} {'accuracy (mean ± sd)':>22} {'seconds':>9}")
        for row, entry in table.items():
            acc = np.array(entry["accuracy"])
            secs = [s for s in entry["seconds"] if s is not None]
            print(f"  {row:<44} {acc.mean():>12.4f} ± {acc.std():.4f} {np.mean(secs) if secs else float('nan'):>9.1f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
