"""`contrastkit mine-negatives`: negatives from the rank window, never the positive or a copy of it, probable false
negatives filtered, checked against a brute-force ranking written in the test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from contrastkit.backbones import save_encoder
from contrastkit.cli.main import main
from contrastkit.data.text_pairs import TextPairsDataset
from contrastkit.index.mine_negatives import mine_negatives


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, minilm, doc_pairs):
    folder = tmp_path_factory.mktemp("mine")
    pairs = [{"anchor": p["anchor"], "positive": p["positive"]} for p in doc_pairs[:150]]
    pairs.append({"anchor": "how do I copy a list", "positive": pairs[0]["positive"].replace(" ", "  ", 1)})  # a copy
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    encoder = save_encoder(minilm, folder / "minilm.safetensors", {"kind": "text", "text_encoder": minilm.text_config})
    return path, encoder, pairs


TIE = 1e-5  # scores this close are a tie: FAISS and numpy may order them either way


def ranks_of(score: float, ranked: np.ndarray) -> tuple[int, int]:
    """The first and last rank a text of this score can take among scores sorted in decreasing order."""
    return int((ranked > score + TIE).sum()), int((ranked >= score - TIE).sum()) - 1


def test_negatives_come_from_the_window_and_skip_positives_and_false_negatives(corpus, tmp_path):
    import contrastkit

    path, encoder_path, pairs = corpus
    out = tmp_path / "mined.jsonl"
    summary = mine_negatives(path, encoder_path, out, num_negatives=2, rank_range=(2, 12), relative_margin=0.9)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary.rows == len(rows) > 0 and summary.anchors == len(pairs)
    # brute force: the ranked corpus of each anchor without its positive's copies, written out here
    encoder = contrastkit.load_encoder(encoder_path)
    corpus_texts = list(dict.fromkeys(p["positive"] for p in pairs))
    with torch.no_grad():
        c = encoder.encode_text(corpus_texts).numpy()
    same = lambda t: " ".join(t.split())  # noqa: E731
    by_anchor: dict[str, list[dict]] = {}
    below: dict[str, int] = {}  # the anchors (with their number of records) that took negatives from below
    for row in rows:
        by_anchor.setdefault(row["anchor"] + "\0" + row["positive"], []).append(row)
    for key, mined in by_anchor.items():
        anchor, positive = key.split("\0")
        with torch.no_grad():
            q = encoder.encode_text([anchor]).numpy()[0]
        scores = c @ q
        ranked = np.sort(
            np.array([scores[j] for j in range(len(corpus_texts)) if same(corpus_texts[j]) != same(positive)])
        )[::-1]
        pos_score = float(q @ encoder.encode_text([positive]).detach().numpy()[0])
        copies = sum(1 for p in pairs if p["anchor"] == anchor and p["positive"] == positive)
        assert len(mined) <= 2 * copies  # at most num_negatives per record
        acceptable = [s for r, s in enumerate(ranked) if r >= 2 and s <= 0.9 * pos_score + 1e-5]
        for row in mined:
            negative = row["negative"]
            assert same(negative) != same(positive)
            score = float(scores[corpus_texts.index(negative)])
            assert score <= 0.9 * pos_score + 1e-5
            # tie-aware rank: texts with equal scores (to float tolerance) may come in either order
            first, last = ranks_of(score, ranked)
            if first >= 12:  # nothing acceptable in the window: the first acceptable ones below it
                assert not [s for s in acceptable if ranks_of(s, ranked)[0] < 12]
                assert score >= acceptable[:2][-1] - TIE
                below[key] = copies
            else:
                assert first < 12 and last >= 2  # some order of the tie puts it inside the window [2, 12)
    assert summary.below_window == sum(below.values()) > 0  # the corpus has anchors whose positive ranks low
    assert summary.without_negative == 0  # every anchor stays in training
    # the output is a pairs file text-pairs reads, with its negative column
    data = TextPairsDataset(out)
    assert data.has_negatives and len(data) == len(rows)


def test_the_command_prints_what_it_filtered_and_refuses_bad_settings(corpus, tmp_path, capsys):
    path, encoder_path, _ = corpus
    out = tmp_path / "mined.jsonl"
    assert main(["mine-negatives", str(path), "--encoder", str(encoder_path), "--out", str(out), "--range", "0:5",
                 "--max-score", "0.6"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "wrote" in printed and "anchor-positive similarity" in printed and "above max score" in printed
    stats = json.loads((tmp_path / "mined.jsonl.mining.json").read_text())  # beside the pairs, for the final table
    assert stats["rows"] == len(out.read_text().splitlines()) and stats["settings"]["range"] == [0, 5]
    for row in map(json.loads, out.read_text().splitlines()):
        assert row["negative"] != row["positive"]
    assert main(["mine-negatives", str(path), "--encoder", str(encoder_path), "--out", str(out), "--range", "5"]) == 2
    assert "--range must be START:STOP" in capsys.readouterr().err
    earlier = out.read_bytes()
    assert main(["mine-negatives", str(path), "--encoder", str(encoder_path), "--out", str(out), "--range", "3:4",
                 "--num-negatives", "2", "--overwrite"]) == 2  # fmt: skip
    assert "fewer ranks than --num-negatives" in capsys.readouterr().err
    assert out.read_bytes() == earlier  # a refused setting leaves the earlier output whole, --overwrite or not
