"""WordNet reverse-dictionary pairs: parsed from the database's own line format, one pair per distinct concept."""

import pytest

from contrastkit.data.wordnet_pairs import WORDNET_DIR, read_synsets, wordnet_pairs

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by\n"
LINES = [
    "00982852 04 n 02 signals_intelligence 0 SIGINT 0 004 @ 00981830 n 0000 | intelligence information gathered "
    "from communications intelligence  \n",
    "00983102 04 n 02 electronics_intelligence 0 ELINT 0 001 @ 00982852 n 0000 | intelligence derived from "
    'electromagnetic radiations; "ELINT was used"  \n',
    "01000001 00 a 01 able(a) 0 000 | (usually followed by `to') having the necessary means or skill  \n",
    "01000002 00 a 01 able(a) 0 000 | have the skills and qualifications to do things well  \n",
    "01000003 00 n 0a ten_words_here 0 x 0 y 0 z 0 a 0 b 0 c 0 d 0 e 0 f 0 000 | a hex count of ten words in all\n",
]


def test_synsets_parse_words_definitions_and_hex_word_counts(tmp_path):
    path = tmp_path / "data.noun"
    path.write_text(LICENCE + "".join(LINES))
    synsets = read_synsets(path)
    assert synsets[0] == (
        ["signals intelligence", "SIGINT"],
        "intelligence information gathered from communications intelligence",
    )
    assert synsets[1][1] == "intelligence derived from electromagnetic radiations"  # the quoted example dropped
    assert synsets[2][0] == ["able"]  # the adjective marker removed
    assert len(synsets[4][0]) == 10  # "0a" words
    (tmp_path / "bad.noun").write_text("00000001 00 n zz broken | x\n")
    with pytest.raises(ValueError, match="line 1: not a WordNet data line"):
        read_synsets(tmp_path / "bad.noun")


def test_pairs_keep_one_concept_per_word_list_and_a_missing_install_says_how(tmp_path):
    for pos in ("noun", "verb", "adj", "adv"):
        (tmp_path / f"data.{pos}").write_text(LICENCE + ("".join(LINES) if pos == "noun" else ""))
    pairs = wordnet_pairs(tmp_path, seed=0)
    positives = [p["positive"] for p in pairs]
    assert sorted(positives) == sorted(["signals intelligence, SIGINT", "electronics intelligence, ELINT", "able",
                                        "ten words here, x, y, z, a, b, c, d, e, f"])  # fmt: skip
    assert len(wordnet_pairs(tmp_path, limit=2)) == 2
    with pytest.raises(FileNotFoundError, match="apt-get install wordnet-base"):
        wordnet_pairs(tmp_path / "none")


@pytest.mark.skipif(
    not (WORDNET_DIR / "data.noun").is_file(),
    reason="wordnet-base not installed: make test installs it as root (apt-get install wordnet-base)",
)
def test_the_installed_wordnet_gives_tens_of_thousands_of_pairs():
    pairs = wordnet_pairs(limit=None)
    assert len(pairs) > 80_000 and len({p["positive"].lower() for p in pairs}) == len(pairs)
