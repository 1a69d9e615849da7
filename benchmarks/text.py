"""Text fine-tuning speed: sentence-transformers' own trainer vs ``contrastkit train text-pairs``, same pairs.

Both fine-tune all-MiniLM-L6-v2 with the in-batch-negatives ranking loss (MultipleNegativesRankingLoss) on the same
(anchor, positive, hard negative) rows of Python's reference documentation, with the same batch size, max length,
optimiser (AdamW), learning rate, warm-up + cosine schedule and number of steps, one after the other in this
process's machine (one heavy job at a time). Printed: training pairs/s over the steps after the first ``--warmup``
(both timed from their own step callbacks: model loading and evaluation excluded), the ratio to
sentence-transformers, and held-out R@1 / MRR of each trained model (160 held-out pairs: equal quality within noise).

    python benchmarks/text.py                # 60 steps, batch 32, max length 128
    python benchmarks/text.py --steps 120 --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from contrastkit.backbones.minilm_text_encoder import minilm_path
from contrastkit.data.python_doc_pairs import python_doc_pairs
from contrastkit.data.text_pairs import TextPairsDataset
from contrastkit.eval.retrieval import retrieval_metrics

LR_AT_256 = 2.5e-4  # the text-pairs recipe's learning rate at a global batch of 256 (scaled linearly)


def split_pairs(folder: Path) -> tuple[Path, Path]:
    """Python documentation pairs with their same-topic hard negative: a fifth held out."""
    pairs = python_doc_pairs(0)
    order = np.random.default_rng(1).permutation(len(pairs))
    held = len(pairs) // 5
    paths = folder / "train.jsonl", folder / "test.jsonl"
    for path, part in zip(paths, (order[held:], order[:held]), strict=True):
        path.write_text("".join(json.dumps(pairs[i]) + "\n" for i in part))
    return paths


def held_out_scores(encode, test: Path) -> dict[str, float]:
    data = TextPairsDataset(test)
    anchors = [data[i][0] for i in range(len(data))]
    positives = [data[i][1][0] for i in range(len(data))]
    n = len(data)
    return retrieval_metrics(encode(anchors), encode(positives), (torch.arange(n), torch.arange(n)))


def run_sentence_transformers(args, train: Path, test: Path, out: Path) -> dict[str, float]:
    """sentence-transformers' SentenceTransformerTrainer with its MultipleNegativesRankingLoss."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )
    from transformers import TrainerCallback

    rows = [json.loads(line) for line in train.read_text().splitlines()]
    dataset = Dataset.from_list(rows)  # columns anchor, positive, negative
    model = SentenceTransformer(str(minilm_path()), device="cpu")
    model.max_seq_length = args.max_length
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, *_, **__):
            stamps.append(time.perf_counter())

    training = SentenceTransformerTrainingArguments(
        output_dir=str(out / "st"),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=LR_AT_256 * args.batch_size / 256,
        weight_decay=0.01,
        warmup_ratio=0.1,
        lr_scheduler_type="cosine",
        dataloader_drop_last=True,
        report_to="none",
        save_strategy="no",
        logging_steps=10**9,
        seed=0,
        use_cpu=True,
        disable_tqdm=True,
    )
    loss = losses.MultipleNegativesRankingLoss(model, scale=20.0)  # temperature 0.05, as contrastkit's recipe
    trainer = SentenceTransformerTrainer(
        model=model, args=training, train_dataset=dataset, loss=loss, callbacks=[Stamp()]
    )
    trainer.train()
    timed = stamps[args.warmup :]
    rate = (len(timed) - 1) * args.batch_size / (timed[-1] - timed[0])

    def encode(texts):
        return model.encode(texts, batch_size=128, convert_to_tensor=True, normalize_embeddings=True).cpu()

    return {"pairs_per_s": rate, **held_out_scores(encode, test)}


def run_contrastkit(args, train: Path, test: Path, out: Path, name: str, overrides: list[str]) -> dict[str, float]:
    """``contrastkit train text-pairs`` as a user runs it (a subprocess); pairs/s from Lightning's throughput log."""
    command = [
        sys.executable, "-m", "contrastkit", "train", "text-pairs", f"name={name}", f"out_dir={out}",
        f"data.path={train}", f"data.test_path={test}", f"data.batch_size={args.batch_size}",
        f"trainer.max_steps={args.steps}", "trainer.max_epochs=1000", "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", f"backbone.max_length={args.max_length}",
        f"optim.warmup_epochs={0.1 * args.steps * args.batch_size / len(train.read_text().splitlines())}",
        *overrides,
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out / name / "logs" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/time")]
    start, end = rows[args.warmup - 1], rows[-1]
    rate = (float(end["train/samples"]) - float(start["train/samples"])) / (
        float(end["train/time"]) - float(start["train/time"])
    )
    after = json.loads((out / name / "final_eval.json").read_text())["after"]
    return {"pairs_per_s": rate, **after}


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (Linux: the avx512_bf16 or amx_bf16 flag)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the timing")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the contrastkit subprocesses
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        train, test = split_pairs(out)
        sizes = [len(p.read_text().splitlines()) for p in (train, test)]
        results = {
            "sentence-transformers (SentenceTransformerTrainer, MNRL)": run_sentence_transformers(
                args, train, test, out
            ),
            "contrastkit train text-pairs (recipe)": run_contrastkit(args, train, test, out, "ck-recipe", []),
            "contrastkit train text-pairs data.length_grouping=16": run_contrastkit(
                args, train, test, out, "ck-grouped", ["data.length_grouping=16"]
            ),
        }
        if cpu_has_bf16():  # bf16 matrix units (AVX-512 BF16 / AMX): autocast pays off; elsewhere it is emulated
            results["contrastkit train text-pairs trainer.precision=bf16-mixed"] = run_contrastkit(
                args, train, test, out, "ck-bf16", ["trainer.precision=bf16-mixed"]
            )
    base = next(iter(results.values()))["pairs_per_s"]
    print(
        f"Fine-tuning all-MiniLM-L6-v2 on {sizes[0]} Python documentation pairs (+ hard negative): {args.steps} "
        f"steps of {args.batch_size}, max length {args.max_length}, {args.threads} threads; held-out R@1 / MRR on "
        f"{sizes[1]} pairs"
    )
    if not cpu_has_bf16():
        print("(no bf16 row: this CPU has no native bfloat16 arithmetic)")
    header = f"{'trainer':<64} {'pairs/s':>8} {'ratio':>6} {'R@1':>7} {'MRR':>7}"
    print(header + "\n" + "-" * len(header))
    for name, r in results.items():
        print(f"{name:<64} {r['pairs_per_s']:>8.1f} {r['pairs_per_s'] / base:>5.2f}x {r['recall@1']:>7.4f} "
              f"{r['mrr']:>7.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
