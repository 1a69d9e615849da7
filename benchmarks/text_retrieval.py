"""Held-out retrieval gain of text fine-tuning over the untouched all-MiniLM-L6-v2, with and without mined negatives.

Two real offline corpora: Python's reference documentation (first sentence of a paragraph -> the rest of it,
``contrastkit.data.python_doc_pairs``) and WordNet (a definition -> the words it defines, a reverse dictionary,
``contrastkit.data.wordnet_pairs``; Debian package ``wordnet-base``). Each corpus is split into training pairs and
held-out pairs *before* anything is mined: negatives are mined for the training anchors from the training positives
only, so held-out anchors and positives are never seen. Python docs has ~800 pairs, so it is scored by 5-fold cross
validation (each pair held out once, R@1 averaged over the folds); WordNet holds out 2,000 pairs and trains on 10,000.

Rows, all through the command line as a user runs it (``contrastkit mine-negatives``, ``contrastkit train
text-pairs``, 1 epoch of the recipe):

- untouched: the pretrained model (the runs' "before");
- fine-tuned, in-batch negatives only: the pairs without a negative column;
- + mined negatives: ``mine-negatives --range 10:50 --relative-margin 0.95`` with the untouched model;
- + mined negatives + guided masking: the same, ``method.guide=`` the untouched model (GISTEmbed);
- + mined + guided masking (guide: the mined model): the guide is the "+ mined negatives" model of the same split,
  trained on the same training pairs (a two-stage recipe: train, then train again from the base model guided by the
  first result). Not run with ``--guide``: that model is already a guide stronger than the one trained.

    python benchmarks/text_retrieval.py                  # both corpora (~40 minutes on 2 CPU cores)
    python benchmarks/text_retrieval.py --corpus wordnet
    python benchmarks/text_retrieval.py --guide models/all-mpnet-base-v2.safetensors   # mpnet mines and guides
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from contrastkit.backbones import save_encoder
from contrastkit.backbones.dual_encoder import create_text_encoder
from contrastkit.data.python_doc_pairs import python_doc_pairs
from contrastkit.data.wordnet_pairs import wordnet_pairs

GUIDED_BY_MINED = "+ mined + guided masking (guide: the mined model)"
ROWS = ("untouched", "in-batch negatives only", "+ mined negatives", "+ mined negatives + guided masking",
        GUIDED_BY_MINED)  # fmt: skip


def write(path: Path, pairs: list[dict[str, str]], keys=("anchor", "positive")) -> Path:
    path.write_text("".join(json.dumps({k: p[k] for k in keys}) + "\n" for p in pairs))
    return path


def contrastkit(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "contrastkit", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip


def one_split(train: list[dict], test: list[dict], folder: Path, guide: Path, guided_by_mined: bool) -> dict:
    """The rows' held-out scores (R@1, R@10, MRR) on one train / held-out split."""
    folder.mkdir(parents=True, exist_ok=True)
    train_path, test_path = write(folder / "train.jsonl", train), write(folder / "test.jsonl", test)
    mined = folder / "mined.jsonl"
    contrastkit("mine-negatives", str(train_path), "--encoder", str(guide), "--out", str(mined), "--overwrite")
    mining = json.loads((folder / "mined.jsonl.mining.json").read_text())
    common = [f"out_dir={folder}", f"data.test_path={test_path}", "trainer.enable_progress_bar=false"]
    runs = {
        "in-batch negatives only": [f"data.path={train_path}"],
        "+ mined negatives": [f"data.path={mined}"],
        "+ mined negatives + guided masking": [f"data.path={mined}", f"method.guide={guide}"],
        # a guide stronger than the model trained (GISTEmbed's premise): the "+ mined negatives" model of this split
        GUIDED_BY_MINED: [f"data.path={mined}", f"method.guide={folder / 'r1' / 'encoder.safetensors'}"],
    }
    if not guided_by_mined:
        del runs[GUIDED_BY_MINED]
    scores, seconds = {}, {}
    for k, (row, extra) in enumerate(runs.items()):
        start = time.perf_counter()
        contrastkit("train", "text-pairs", f"name=r{k}", *common, *extra)
        seconds[row] = time.perf_counter() - start
        result = json.loads((folder / f"r{k}" / "final_eval.json").read_text())
        scores["untouched"] = result["before"]
        scores[row] = result["after"]
    return {"scores": scores, "seconds": seconds, "mining": mining, "held_out": len(test), "train": len(train)}


def python_docs(folder: Path, guide: Path, args) -> list[dict]:
    pairs = python_doc_pairs(0)
    folds = np.array_split(np.random.default_rng(1).permutation(len(pairs)), args.folds)
    results = []
    for f, held in enumerate(folds):
        held_set = set(held.tolist())
        train = [p for i, p in enumerate(pairs) if i not in held_set]
        test = [pairs[i] for i in held]
        results.append(one_split(train, test, folder / f"pydocs-{f}", guide, not args.guide))
        print(f"  python docs fold {f + 1}/{args.folds} done", flush=True)
    return results


def wordnet(folder: Path, guide: Path, args) -> list[dict]:
    pairs = wordnet_pairs(limit=args.wordnet_train + args.wordnet_test, seed=0)
    test, train = pairs[: args.wordnet_test], pairs[args.wordnet_test :]
    return [one_split(train, test, folder / "wordnet", guide, not args.guide)]


def table(name: str, results: list[dict]) -> str:
    held = sum(r["held_out"] for r in results)
    lines = [f"{name}: {held} held-out pairs ({len(results)} split{'s' if len(results) > 1 else ''}, "
             f"{results[0]['train']} training pairs each)"]  # fmt: skip
    header = f"{'':<50} {'R@1':>7} {'R@10':>7} {'MRR':>7} {'dR@1':>7} {'train s':>8}"
    lines += [header, "-" * len(header)]
    weights = np.array([r["held_out"] for r in results], dtype=float)

    def mean(row: str, metric: str) -> float:
        return float(np.average([r["scores"][row][metric] for r in results], weights=weights))

    for row in (r for r in ROWS if r in results[0]["scores"]):
        seconds = np.mean([r["seconds"][row] for r in results]) if row in results[0]["seconds"] else None
        lines.append(
            f"{row:<50} {mean(row, 'recall@1'):>7.4f} {mean(row, 'recall@10'):>7.4f} {mean(row, 'mrr'):>7.4f} "
            f"{mean(row, 'recall@1') - mean('untouched', 'recall@1'):>+7.4f} "
            f"{'' if seconds is None else f'{seconds:.0f}':>8}"
        )
    m = results[0]["mining"]
    lines.append(
        f"mining (split 1): {m['rows']} rows for {m['anchors']} anchors, {m['below_window']} from below the window, "
        f"{m['without_negative']} without; filtered {m['filtered']}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("all", "python-docs", "wordnet"), default="all")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--wordnet-train", type=int, default=10000)
    parser.add_argument("--wordnet-test", type=int, default=2000)
    parser.add_argument("--keep", help="keep the runs in this folder (default: a temporary one)")
    parser.add_argument(
        "--guide",
        help="the encoder that mines the negatives and guides the masking (default the untouched MiniLM), e.g. "
        "models/all-mpnet-base-v2.safetensors from `make models`: a stronger teacher than the model trained",
    )
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.guide:
            guide = Path(args.guide)
        else:
            minilm = create_text_encoder("minilm", max_length=128)
            guide = save_encoder(
                minilm, folder / "minilm.safetensors", {"kind": "text", "text_encoder": minilm.text_config}
            )
        out = []
        if args.corpus in ("all", "python-docs"):
            out.append(table("Python reference documentation", python_docs(folder, guide, args)))
        if args.corpus in ("all", "wordnet"):
            out.append(table("WordNet reverse dictionary", wordnet(folder, guide, args)))
    print("\n\n".join(out))


if __name__ == "__main__":
    main()
