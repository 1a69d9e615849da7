"""`contrastkit train text-pairs` on real text pairs (Python's reference documentation, offline): held-out retrieval
before and after, export as a text encoder, `embed` of texts and `search --text`."""

import json

import numpy as np
import pytest
import torch

from contrastkit.cli.main import main
from contrastkit.data.text_pairs import TextPairsDataset


@pytest.fixture(scope="module")
def run(tmp_path_factory, doc_pairs):
    out = tmp_path_factory.mktemp("pairs")
    pairs = out / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in doc_pairs))
    args = ["train", "text-pairs", f"data.path={pairs}", f"out_dir={out}", "data.batch_size=16",
            "data.train_fraction=0.2", "trainer.max_steps=6", "final_eval.test_size=100",
            "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]  # fmt: skip
    assert main(args) == 0
    return out / "text-pairs", pairs


def test_retrieval_before_and_after_is_reported_and_before_matches_sentence_transformers(run):
    run_dir, pairs = run
    result = json.loads((run_dir / "final_eval.json").read_text())
    assert result["held_out_pairs"] == 100
    for stage in ("before", "after"):
        assert 0.0 < result[stage]["recall@1"] <= result[stage]["recall@10"] <= 1.0
    # 'before' is the pretrained model: recompute it with sentence-transformers on the same held-out split
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from contrastkit.backbones.minilm_text_encoder import minilm_path
    from contrastkit.eval import retrieval_metrics

    dataset = TextPairsDataset(pairs)
    order = np.random.default_rng(0).permutation(len(dataset))
    held = np.sort(order[:100])
    model = SentenceTransformer(str(minilm_path()), device="cpu")
    a = model.encode([dataset[int(i)][0] for i in held], convert_to_tensor=True)
    p = model.encode([dataset[int(i)][1][0] for i in held], convert_to_tensor=True)
    reference = retrieval_metrics(a, p, (torch.arange(100), torch.arange(100)))
    assert result["before"]["recall@1"] == pytest.approx(reference["recall@1"], abs=0.011)
    assert result["before"]["mrr"] == pytest.approx(reference["mrr"], abs=0.01)
    assert result["after"]["mrr"] > result["before"]["mrr"] - 0.05  # a few steps do not wreck the encoder


def test_text_encoder_embeds_and_searches_texts(run, tmp_path, capsys):
    run_dir, _ = run
    from contrastkit import load_encoder

    encoder = load_encoder(run_dir / "encoder.safetensors")
    assert encoder.encoder_info["kind"] == "text"
    texts = tmp_path / "docs.txt"
    texts.write_text("How to sort a list in place.\nThe for statement iterates over a sequence.\nOpening files.\n")
    assert main(["embed", str(run_dir / "encoder.safetensors"), str(texts), "--out", str(tmp_path / "e")]) == 0
    assert main(["index", "build", str(tmp_path / "e"), "--out", str(tmp_path / "t.faiss")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "t.faiss"), "--text", "loop over the items of a list", "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "for statement" in lines[0]


def test_the_final_table_shows_the_mining_of_mined_pairs():
    from contrastkit.train.tasks.text_pairs_task import format_pair_table

    r = {"recall@1": 0.5, "recall@10": 0.9, "mrr": 0.6}
    mining = {"rows": 90, "anchors": 100, "filtered": {"above relative margin": 7},
              "positive_scores": [0.1, 0.5, 0.6, 0.7, 0.9], "negative_scores": [0.1, 0.3, 0.4, 0.5, 0.6]}  # fmt: skip
    table = format_pair_table({"held_out_pairs": 10, "before": r, "after": r, "mining": mining})
    assert "hard negatives: 90 mined rows for 100 anchors (skipped in the window: 7 above relative margin" in table
    assert "0 anchors took negatives from below it; median similarity positive 0.600, negative 0.400" in table
    assert "hard negatives" not in format_pair_table({"held_out_pairs": 10, "before": r, "after": r})


def test_bad_pairs_files_are_refused(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"anchor": "a", "positive": "b"}\n{"anchor": "c"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2: missing column 'positive'"):
        TextPairsDataset(bad)
    bad.write_text('{"anchor": "a", "positive": "b"}\nnot json\n')
    with pytest.raises(ValueError, match="line 2: malformed JSON"):
        TextPairsDataset(bad)
    assert main(["train", "text-pairs", f"out_dir={tmp_path}"]) == 2  # no data.path: a clear error, exit 2
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TextPairsDataset(tmp_path / "missing.jsonl")


def test_a_guided_run_trains_and_a_missing_guide_is_refused_before_the_data(run, tmp_path, capsys):
    from contrastkit.train.config import ConfigError, load_config

    run_dir, pairs = run
    with pytest.raises(ConfigError, match=r"method\.guide: .*missing\.safetensors"):
        load_config(
            "text-pairs",
            [f"data.path={tmp_path / 'no-such-pairs.jsonl'}", f"method.guide={tmp_path / 'missing.safetensors'}"],
        )
    args = ["train", "text-pairs", f"data.path={pairs}", f"out_dir={tmp_path}", "name=guided", "data.batch_size=16",
            "data.train_fraction=0.2", "trainer.max_steps=3", "final_eval.enabled=false",
            "trainer.enable_progress_bar=false", f"method.guide={run_dir / 'encoder.safetensors'}",
            "trainer.accelerator=cpu"]  # fmt: skip
    assert main(args) == 0
    ckpt = torch.load(tmp_path / "guided" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3 and not any("_guide" in k for k in ckpt["state_dict"])


def test_batches_come_tokenised_once_grouped_by_length_and_embed_as_strings_do(run, minilm):
    from contrastkit.data.tokenized_texts import TextColumns, TokenizedTexts
    from contrastkit.train.config import load_config
    from contrastkit.train.tasks.text_pairs_task import TextPairsDataModule

    _, pairs = run
    config = load_config("text-pairs", [f"data.path={pairs}", "data.batch_size=8", "data.length_grouping=4"])
    data = TextPairsDataModule(config)
    data.tokenize_for(minilm)
    batches = list(data.train_dataloader())
    anchors, columns = batches[0]
    assert isinstance(anchors, TokenizedTexts) and isinstance(columns, TextColumns) and len(columns.columns) == 2
    with torch.no_grad():  # the stored ids embed exactly as the strings tokenised on the fly
        assert torch.allclose(minilm(columns.columns[0]), minilm([p for p, _ in columns]), atol=1e-5)
    # grouped: far less padding than random batches (each column padded to its longest of 8 texts)
    table = data.table
    grouped = sum(c.input_ids.numel() for a, cols in batches for c in (a, *cols.columns))
    items = [data.dataset[int(i)] for i in data.train_indices]
    rng = np.random.default_rng(0)
    random_batches = [[items[j] for j in b] for b in rng.permutation(len(items))[: len(batches) * 8].reshape(-1, 8)]
    padded = sum(8 * max(table.length((a, *pair)[k]) for a, pair in b) for b in random_batches for k in range(3))
    assert grouped < 0.95 * padded  # (~9 % here: at 64 tokens most passages are truncated to the same length)


def test_a_guide_embeds_the_tokenised_batch_sorted_by_length_as_it_embeds_strings(run, minilm, tmp_path):
    import contrastkit
    from contrastkit.backbones import save_encoder
    from contrastkit.methods import TextPairs
    from contrastkit.train.config import load_config
    from contrastkit.train.tasks.text_pairs_task import TextPairsDataModule

    _, pairs = run
    info = {"kind": "text", "text_encoder": minilm.text_config}
    guide_path = save_encoder(minilm, tmp_path / "guide.safetensors", info)
    data = TextPairsDataModule(load_config("text-pairs", [f"data.path={pairs}", "data.batch_size=8"]))
    data.tokenize_for(minilm)
    anchors, columns = next(iter(data.train_dataloader()))
    method = TextPairs(minilm, guide=str(guide_path)).eval()
    with torch.no_grad():
        embedded = method.embed_batch([anchors], columns)
    guide = contrastkit.load_encoder(guide_path)
    with torch.no_grad():  # the reference: each column's strings through the guide, tokenised on the fly
        expected = [guide.encode_text(list(texts), normalize=False) for texts in (anchors, *columns.columns)]
    assert len(embedded) == 6
    for got, want in zip(embedded[3:], expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
