"""Labelled texts available offline: WordNet's definitions labelled by their semantic category.

WordNet 3.0 (Miller 1995; Debian package ``wordnet-base``) files every synset in one of 45 lexicographer files, its
coarse semantic category: ``noun.animal``, ``noun.artifact``, ``noun.feeling``, ``verb.motion``, ... Classifying a
definition ("a domesticated carnivorous mammal ...") into its category is a real few-shot text classification task
with 25 noun classes (``noun.Tops``, a handful of top-level concepts, left out) or 15 verb classes. Run
``python -m contrastkit.data.wordnet_categories noun OUT.jsonl`` to write ``{"text", "label"}`` rows for
``contrastkit finetune``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from contrastkit.data.wordnet_pairs import APT_HINT, WORDNET_DIR, read_synset_records

# WordNet 3.0's lexicographer files, by number (the `lexnames` file of the WordNet distribution)
LEXICOGRAPHER_FILES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body noun.cognition "
    "noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive noun.object "
    "noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape "
    "noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication verb.competition "
    "verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession "
    "verb.social verb.stative verb.weather adj.ppl"
).split()
LEFT_OUT = ("noun.Tops",)  # 51 top-level concepts (entity, abstraction, ...): not a category of their own


def wordnet_categories(
    pos: str = "noun", root: str | os.PathLike | None = None, min_chars: int = 20
) -> list[dict[str, str]]:
    """``[{"text": definition, "label": "noun.animal"}, ...]`` in file order for every synset of ``pos`` ("noun" or
    "verb") whose definition has at least ``min_chars`` characters, each definition once (the first synset keeps a
    definition that several share)."""
    if pos not in ("noun", "verb"):
        raise ValueError(f"pos must be noun or verb, got {pos!r}")
    path = (Path(root) if root is not None else WORDNET_DIR) / f"data.{pos}"
    if not path.is_file():
        raise FileNotFoundError(f"WordNet data file not found: {path} ({APT_HINT})")
    rows, seen = [], set()
    for lexfile, _, definition in read_synset_records(path):
        label = LEXICOGRAPHER_FILES[lexfile]
        if len(definition) < min_chars or label in LEFT_OUT or definition in seen:
            continue
        seen.add(definition)
        rows.append({"text": definition, "label": label})
    return rows


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m contrastkit.data.wordnet_categories noun|verb OUT.jsonl")
    written = wordnet_categories(sys.argv[1])
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in written)
    print(f"wrote {len(written)} labelled definitions to {sys.argv[2]}")
