"""Hard negatives mined from a corpus of positives, with probable false negatives filtered out.

For each anchor of a pairs file, the corpus of positives is searched with an encoder (FAISS, inner product on
normalised embeddings), and negatives are taken from a window of ranks, skipping the anchor's own positive and exact
duplicates of it (whitespace-normalised), and candidates that are probably positives too: a similarity above
``max_score``, or above ``relative_margin`` times the positive's own similarity (positive-aware mining, Moreira et
al. 2024, "NV-Retriever", arXiv 2407.15831: TopK-PercPos).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from contrastkit.backbones.embed_by_length import encode_by_length


@dataclass
class MiningSummary:
    """What mining found and filtered, and the score distributions."""

    anchors: int  # anchors in the pairs file
    corpus: int  # distinct positives searched
    rows: int  # (anchor, positive, negative) rows written
    without_negative: int  # anchors left without any negative (not written)
    below_window: int = 0  # anchors with nothing acceptable in the window, given the first acceptable below it
    filtered: dict[str, int] = field(default_factory=dict)  # candidates skipped in the window, by reason
    positive_scores: list[float] = field(default_factory=list)  # quantiles 0, 25, 50, 75, 100 of anchor-positive
    negative_scores: list[float] = field(default_factory=list)  # the same for the negatives written

    def text(self) -> str:
        q = lambda s: " / ".join(f"{v:.3f}" for v in s) if s else "-"  # noqa: E731
        reasons = ", ".join(f"{n} {why}" for why, n in self.filtered.items()) or "none"
        return (
            f"{self.anchors} anchors, a corpus of {self.corpus} distinct positives; wrote {self.rows} rows "
            f"({self.below_window} anchors with nothing acceptable in the rank window took negatives from below it; "
            f"{self.without_negative} left without a negative)\n"
            f"skipped in the rank window: {reasons}\n"
            f"anchor-positive similarity (min / 25% / median / 75% / max): {q(self.positive_scores)}\n"
            f"anchor-negative similarity (min / 25% / median / 75% / max): {q(self.negative_scores)}"
        )


def _same(text: str) -> str:
    return " ".join(text.split())


@torch.no_grad()
def _embed(encoder, texts: list[str], batch_size: int) -> np.ndarray:
    out = np.empty((len(texts), int(encoder.feature_dim)), dtype=np.float32)  # (N, D), L2-normalised
    for rows, z in encode_by_length(encoder.encode_text, texts, batch_size):
        out[rows] = z.float().cpu().numpy()  # (b, D)
    return out


def _quantiles(values: list[float]) -> list[float]:
    return [float(v) for v in np.quantile(values, [0, 0.25, 0.5, 0.75, 1.0])] if values else []


def mine_negatives(
    pairs: str | os.PathLike,
    encoder,
    out: str | os.PathLike,
    num_negatives: int = 1,
    rank_range: tuple[int, int] = (10, 50),
    max_score: float | None = None,
    relative_margin: float | None = 0.95,
    batch_size: int = 128,
) -> MiningSummary:
    """Write ``out`` (JSON lines ``{"anchor", "positive", "negative"}``, one row per mined negative: the format
    ``contrastkit train text-pairs`` reads) from the pairs file ``pairs``.

    An anchor with no acceptable candidate in the window (its positive ranks low, so all of the window is above the
    relative margin) takes the first acceptable candidates ranked below the window instead of leaving the training
    set: those are the anchors the encoder gets most wrong (counted in ``below_window``).

    Args:
        pairs: a pairs file (``.jsonl`` / ``.csv`` / ``.tsv`` with anchor and positive columns).
        encoder: an encoder file path, or a loaded encoder that embeds text (``encode_text``).
        out: the output file (written to a temporary name, then renamed).
        num_negatives: negatives per anchor (the hardest kept in the window).
        rank_range: ``(start, stop)``: candidates ranked ``start`` .. ``stop - 1`` (0 = the most similar, after the
            anchor's own positive and its duplicates are removed) are eligible.
        max_score: skip candidates more similar to the anchor than this (None: no limit).
        relative_margin: skip candidates more similar than this times the positive's similarity (None: off).
        batch_size: texts embedded at a time.

    Raises:
        ValueError: bad settings (before anything is read), an encoder that cannot embed text, an empty corpus.
    """
    start, stop = rank_range
    if num_negatives < 1 or not 0 <= start < stop:
        raise ValueError(
            f"need num_negatives >= 1 and 0 <= start < stop in --range, got {num_negatives}, {start}:{stop}"
        )
    if stop - start < num_negatives:
        raise ValueError(f"--range {start}:{stop} holds fewer ranks than --num-negatives {num_negatives}")
    if relative_margin is not None and not relative_margin > 0:
        raise ValueError(f"--relative-margin must be > 0, got {relative_margin}")
    import faiss

    from contrastkit.backbones.encoder import TextEncoder
    from contrastkit.backbones.encoder_file import load_encoder
    from contrastkit.data.text_pairs import TextPairsDataset

    if not isinstance(encoder, torch.nn.Module):
        encoder = load_encoder(encoder)
    if not isinstance(encoder, TextEncoder):
        raise ValueError(f"{getattr(encoder, 'encoder_path', encoder)}: mining needs an encoder that embeds text")
    data = TextPairsDataset(pairs)
    records = [data[i] for i in range(len(data))]
    anchors = [anchor for anchor, _ in records]
    positives = [texts[0] for _, texts in records]
    corpus = list(dict.fromkeys(positives))  # distinct positives, in order of appearance
    if not corpus:
        raise ValueError(f"{pairs}: no pairs to mine from")
    keys = [_same(t) for t in corpus]
    embedded = _embed(encoder, corpus, batch_size)  # (C, D)
    index = faiss.IndexFlatIP(int(encoder.feature_dim))
    index.add(embedded)
    query = _embed(encoder, anchors, batch_size)  # (A, D)
    position = {text: i for i, text in enumerate(corpus)}
    own_ids = np.array([position[p] for p in positives])  # (A,)
    pos_scores = np.einsum("ad,ad->a", query, embedded[own_ids]).tolist()  # (A,)
    filtered = {"duplicate of the positive": 0, "above max score": 0, "above relative margin": 0}
    counts = {"below the window": 0}

    def pick(i: int, scores: np.ndarray, ids: np.ndarray, first: int, last: int) -> list[tuple[float, str]]:
        """Up to num_negatives acceptable candidates ranked first .. last - 1 for anchor i (the own positive and
        its copies are not ranked)."""
        own, rank, kept = keys[own_ids[i]], 0, []
        for s, j in zip(scores, ids, strict=True):
            if j < 0:
                break
            if keys[j] == own:  # the anchor's own positive (not a candidate), or a copy of it
                filtered["duplicate of the positive"] += int(j != own_ids[i] and first == start)
                continue
            if rank >= last or len(kept) == num_negatives:
                break
            if rank >= first:
                if max_score is not None and s > max_score:
                    filtered["above max score"] += int(first == start)
                elif relative_margin is not None and s > relative_margin * pos_scores[i]:
                    filtered["above relative margin"] += int(first == start)
                else:
                    kept.append((float(s), corpus[j]))
            rank += 1
        return kept

    mined: list[list[tuple[float, str]]] = []
    for begin in range(0, len(anchors), 1024):
        depth = min(len(corpus), stop + 64)  # room for the positive's duplicates above the window
        scores, ids = index.search(query[begin : begin + 1024], depth)
        mined += [pick(begin + r, sc, ix, start, stop) for r, (sc, ix) in enumerate(zip(scores, ids, strict=True))]
    # Anchors with nothing acceptable in the window (their positive ranks low, so every candidate in it is above the
    # relative margin: the anchors the encoder gets most wrong) take the first acceptable candidates below it
    # rather than drop out of training.
    missing = [i for i, kept in enumerate(mined) if not kept]
    depth = min(len(corpus), stop + 1024)
    for begin in range(0, len(missing), 1024) if depth > stop else ():
        block = missing[begin : begin + 1024]
        scores, ids = index.search(query[block], depth)
        for i, sc, ix in zip(block, scores, ids, strict=True):
            mined[i] = pick(i, sc, ix, stop, depth)
            counts["below the window"] += int(bool(mined[i]))
    rows, neg_scores, without = [], [], 0
    for i, kept in enumerate(mined):
        without += not kept
        for s, text in kept:
            rows.append({"anchor": anchors[i], "positive": positives[i], "negative": text})
            neg_scores.append(s)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    os.replace(tmp, out)
    filtered = {why: n for why, n in filtered.items() if n}
    summary = MiningSummary(
        len(anchors),
        len(corpus),
        len(rows),
        without,
        counts["below the window"],
        filtered,
        _quantiles(pos_scores),
        _quantiles(neg_scores),
    )
    settings = {"num_negatives": num_negatives, "range": [start, stop], "max_score": max_score,
                "relative_margin": relative_margin, "encoder": getattr(encoder, "encoder_path", None)}  # fmt: skip
    stats_path(out).write_text(json.dumps({**asdict(summary), "settings": settings}, indent=2) + "\n", encoding="utf-8")
    return summary


def stats_path(mined: str | os.PathLike) -> Path:
    """Where mining writes its statistics beside the mined pairs (``mined.jsonl`` -> ``mined.jsonl.mining.json``);
    a text-pairs run on that file shows them in its final table."""
    return Path(f"{mined}.mining.json")
