"""Python's documentation as text pairs: the shape of what `python_doc_pairs` builds from whatever `pydoc_data` the
running Python has (its content changes with the patch release; the tests that need fixed text read the pinned copy,
`tests/data/python_doc_pairs.jsonl.gz`)."""

import json

from contrastkit.data.python_doc_pairs import python_doc_pairs, write_python_doc_pairs


def test_pairs_are_anchor_sentence_positive_rest_and_a_negative_from_the_same_topic():
    pairs = python_doc_pairs(0)
    assert len(pairs) > 300  # hundreds of paragraphs in every Python 3 release's topics
    for p in pairs:
        assert set(p) == {"anchor", "positive", "negative"}
        assert p["anchor"] and p["positive"] and p["negative"]  # (a topic may repeat a paragraph word for word)
        assert p["anchor"][-1] in ".!?" and len(p["anchor"]) + len(p["positive"]) + 1 >= 120
        assert p["positive"] == " ".join(p["positive"].split())  # whitespace normalised


def test_order_is_seeded_and_the_file_round_trips(tmp_path):
    a, b, c = python_doc_pairs(0), python_doc_pairs(0), python_doc_pairs(1)
    assert a == b and a != c
    n = write_python_doc_pairs(tmp_path / "pairs.jsonl", seed=0)
    assert [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()] == a and n == len(a)


def test_the_pinned_copy_has_the_same_shape(doc_pairs):
    assert len(doc_pairs) == 804  # Python 3.11.7's topics
    assert all(set(p) == {"anchor", "positive", "negative"} for p in doc_pairs)
