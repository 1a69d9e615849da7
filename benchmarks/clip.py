"""Zero-shot transfer of a LiT run (locked all-MiniLM-L6-v2 text tower) on Fashion-MNIST, seen vs unseen classes,
and text-pairs fine-tuning of MiniLM on Python's reference documentation, before vs after.

Part 1 trains ``clip-fashion-mnist`` on 8 of the 10 classes (captions from class names and templates) and reports
zero-shot top-1 on the test images of the 8 seen classes (8-way) and of the 2 held-out classes (2-way), each next to
chance and to the same model at random initialisation. Part 2 runs ``text-pairs`` on ~800 documentation passages
(first sentence -> rest of the paragraph) and reports held-out Recall@1/10 and MRR before and after.

    python benchmarks/clip.py                      # 3 epochs on 30,000 images; text pairs 1 epoch
    python benchmarks/clip.py --epochs 5 --images 60000 --skip-text
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from contrastkit.data.python_doc_pairs import write_python_doc_pairs
from contrastkit.train.config import load_config
from contrastkit.train.final_eval import format_table
from contrastkit.train.fit import train
from contrastkit.train.tasks.text_pairs_task import format_pair_table

HELD_OUT = ("Sandal", "Bag")  # never captioned during training


def lit(args, out_dir: Path) -> None:
    from contrastkit.data import load_dataset

    classes = [c for c in load_dataset("fashion-mnist", split="test").classes if c not in HELD_OUT]
    config = load_config(
        "clip-fashion-mnist",
        [
            f"out_dir={out_dir}",
            f"trainer.max_epochs={args.epochs}",
            f"data.train_fraction={args.images / 60000}",
            "data.classes=[" + ",".join(f"'{c}'" for c in classes) + "]",
            "trainer.enable_progress_bar=false",
            "trainer.accelerator=cpu",
            "monitor.every_n_epochs=0",
            "final_eval.train_size=10000",
            "final_eval.test_size=10000",
        ],
    )
    start = time.perf_counter()
    result = train(config)
    print(f"\nLiT on {args.images} Fashion-MNIST images x {args.epochs} epochs, held out: {', '.join(HELD_OUT)} "
          f"({time.perf_counter() - start:.0f} s)")  # fmt: skip
    print(format_table(result.final_eval))


def text_pairs(args, out_dir: Path) -> None:
    pairs = out_dir / "python-doc-pairs.jsonl"
    write_python_doc_pairs(pairs)
    config = load_config(
        "text-pairs",
        [f"data.path={pairs}", f"out_dir={out_dir}", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"],
    )
    start = time.perf_counter()
    result = train(config)
    print(f"\ntext-pairs on Python documentation passages ({time.perf_counter() - start:.0f} s)")
    print(format_pair_table(result.final_eval))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=30000)
    parser.add_argument("--skip-text", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lit(args, Path(tmp))
        if not args.skip_text:
            text_pairs(args, Path(tmp))


if __name__ == "__main__":
    main()
