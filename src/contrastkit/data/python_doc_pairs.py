"""Real text pairs available offline: passages of Python's own reference documentation (``pydoc_data``).

Each paragraph of a documentation topic gives a pair: its first sentence (the anchor, like a query or a title) and
the rest of the paragraph (the positive, the passage that answers it); the hard negative is the rest of another
paragraph of the same topic. About 800 pairs with the standard library of Python 3.11. Run
``python -m contrastkit.data.python_doc_pairs pairs.jsonl`` to write them for ``contrastkit train text-pairs``.
"""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np


def python_doc_pairs(seed: int = 0, min_chars: int = 120) -> list[dict[str, str]]:
    """``[{"anchor", "positive", "negative"}, ...]`` from the ``pydoc_data`` topics, in a seeded order."""
    from pydoc_data.topics import topics

    rng = np.random.default_rng(seed)
    pairs = []
    for name in sorted(topics):
        paragraphs = []
        for block in re.split(r"\n\s*\n", topics[name]):
            text = " ".join(block.split())
            sentences = re.split(r"(?<=[.!?])\s+", text)
            if len(sentences) >= 2 and len(text) >= min_chars and not text.startswith(">>>"):
                paragraphs.append((sentences[0], " ".join(sentences[1:])))
        for i, (anchor, positive) in enumerate(paragraphs):
            if len(paragraphs) < 2:
                break
            other = int(rng.integers(len(paragraphs) - 1))
            negative = paragraphs[other + (other >= i)][1]
            pairs.append({"anchor": anchor, "positive": positive, "negative": negative})
    order = rng.permutation(len(pairs))
    return [pairs[i] for i in order]


def write_python_doc_pairs(path: str | os.PathLike, seed: int = 0) -> int:
    """Write the pairs as JSON lines to ``path``; returns how many."""
    pairs = python_doc_pairs(seed)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(p) + "\n" for p in pairs)
    return len(pairs)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m contrastkit.data.python_doc_pairs OUT.jsonl")
    print(f"wrote {write_python_doc_pairs(sys.argv[1])} pairs to {sys.argv[1]}")
