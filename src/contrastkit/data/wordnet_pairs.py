"""Real text pairs available offline that are not documentation: WordNet's definitions and the words they define.

WordNet 3.0 (Miller 1995; Debian package ``wordnet-base``, files ``/usr/share/wordnet/data.{noun,verb,adj,adv}``)
lists ~117,000 concepts (synsets), each with the words that express it and a definition. A pair is a reverse-dictionary
lookup (Hill et al. 2016, "Learning to Understand Phrases by Embedding the Dictionary"): the anchor is the definition
("intelligence derived from electromagnetic radiations from foreign sources"), the positive the concept's words
("electronics intelligence, ELINT"). Run ``python -m contrastkit.data.wordnet_pairs pairs.jsonl`` to write them for
``contrastkit train text-pairs`` / ``contrastkit mine-negatives``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np

WORDNET_DIR = Path("/usr/share/wordnet")  # Debian package wordnet-base
APT_HINT = "Debian/Ubuntu: sudo apt-get install wordnet-base"
PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")


def read_synsets(path: str | os.PathLike) -> list[tuple[list[str], str]]:
    """``[(words, definition), ...]`` of one WordNet ``data.*`` file (licence header lines skipped; the gloss's
    quoted examples dropped from the definition)."""
    return [(words, definition) for _, words, definition in read_synset_records(path)]


def read_synset_records(path: str | os.PathLike) -> list[tuple[int, list[str], str]]:
    """``[(lexicographer file number, words, definition), ...]`` of one WordNet ``data.*`` file: the number names
    the synset's semantic category (``LEXICOGRAPHER_FILES``: 5 is noun.animal)."""
    synsets = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if line.startswith("  ") or not line.strip():  # the licence header
                continue
            fields, _, gloss = line.partition(" | ")
            parts = fields.split()
            try:
                lexfile = int(parts[1])
                count = int(parts[3], 16)  # the number of words, in hex
                words = [parts[4 + 2 * i] for i in range(count)]
            except (IndexError, ValueError):
                raise ValueError(f"{path}, line {number}: not a WordNet data line") from None
            definition = gloss.split('"')[0].strip().rstrip(";").strip()
            words = [re.sub(r"\([a-z]+\)$", "", w).replace("_", " ") for w in words]  # 'able(a)' -> 'able'
            synsets.append((lexfile, list(dict.fromkeys(words)), definition))
    return synsets


def wordnet_pairs(
    root: str | os.PathLike | None = None, limit: int | None = None, seed: int = 0, min_chars: int = 20
) -> list[dict[str, str]]:
    """``[{"anchor": definition, "positive": "word, synonym, ..."}, ...]`` in a seeded order: every synset of the
    four parts of speech whose definition has at least ``min_chars`` characters, then at most ``limit`` of them.
    Synsets whose word lists repeat another's (different senses of the same words) keep only the first, so that
    every positive is one concept."""
    folder = Path(root) if root is not None else WORDNET_DIR
    files = [folder / f"data.{pos}" for pos in PARTS_OF_SPEECH]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"WordNet data files not found: {', '.join(missing)} ({APT_HINT})")
    seen, pairs = set(), []
    for file in files:
        for words, definition in read_synsets(file):
            positive = ", ".join(words)
            if len(definition) < min_chars or positive.lower() in seen:
                continue
            seen.add(positive.lower())
            pairs.append({"anchor": definition, "positive": positive})
    order = np.random.default_rng(seed).permutation(len(pairs))
    return [pairs[i] for i in order[:limit]]


def write_pairs(pairs: list[dict[str, str]], path: str | os.PathLike) -> int:
    """Write ``pairs`` as JSON lines to ``path``; returns how many."""
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(p) + "\n" for p in pairs)
    return len(pairs)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m contrastkit.data.wordnet_pairs OUT.jsonl [LIMIT]")
    limit = int(sys.argv[2]) if len(sys.argv) == 3 else None
    print(f"wrote {write_pairs(wordnet_pairs(limit=limit), sys.argv[1])} pairs to {sys.argv[1]}")
