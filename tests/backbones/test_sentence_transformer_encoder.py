"""import-encoder sentence-transformers:FOLDER: the real all-MiniLM-L6-v2 folder imported, its embeddings compared
with sentence-transformers' own ``encode``; broken folders refused in one line; the imported tower used where
MiniLM is (token ids made ahead, guide, ``contrastkit embed``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import contrastkit
from contrastkit.backbones.embed_by_length import embed_by_length
from contrastkit.backbones.encoder import TextEncoder
from contrastkit.backbones.import_encoder import import_encoder
from contrastkit.backbones.minilm_text_encoder import minilm_path
from contrastkit.cli.main import main
from contrastkit.data.tokenized_texts import TextColumns, TokenTable

pytest.importorskip("sentence_transformers")

TEXTS = [
    "A man is eating food.",
    "  Leading and trailing spaces  ",
    "Ünïcödé, café, naïve; 中文 and an emoji 🙂",
    "UPPER CASE and MiXeD case",
    "x",
    "The quick brown fox jumps over the lazy dog. " * 60,  # ~600 tokens: truncated to max_seq_length (256)
    "Two sentences. Here is the second one!",
    "tabs\tand\nnewlines",
    "a [MASK] token and [SEP] inside",
    "How do I read a file line by line in Python?",
]


@pytest.fixture(scope="module")
def folder() -> Path:
    return minilm_path()


@pytest.fixture(scope="module")
def imported(folder, tmp_path_factory) -> Path:
    return import_encoder(f"sentence-transformers:{folder}", tmp_path_factory.mktemp("st") / "minilm.safetensors")


def variant(folder: Path, out: Path, modules: list[dict] | None = None, pooling: dict | None = None) -> Path:
    """A copy of ``folder`` (links to its files) with ``modules.json`` / ``1_Pooling/config.json`` replaced."""
    out.mkdir()
    (out / "1_Pooling").mkdir()
    for file in [*folder.iterdir(), *(folder / "1_Pooling").iterdir()]:
        if file.is_file():
            (out / file.relative_to(folder)).symlink_to(file)
    if modules is not None:
        (out / "modules.json").unlink()
        (out / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    if pooling is not None:
        (out / "1_Pooling" / "config.json").unlink()
        (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling), encoding="utf-8")
    return out


def modules_of(folder: Path) -> list[dict]:
    return json.loads((folder / "modules.json").read_text(encoding="utf-8"))


def test_embeddings_equal_sentence_transformers(folder, imported):
    from sentence_transformers import SentenceTransformer

    encoder = contrastkit.load_encoder(imported)
    assert isinstance(encoder, TextEncoder)
    config = encoder.encoder_info["text_encoder"]
    assert config["name"] == "sentence_transformer" and config["pooling"] == ["mean"] and config["normalize"]
    assert encoder.feature_dim == 384 and encoder.model.max_length == 256
    assert len(encoder.model.tokenizer(TEXTS[5])["input_ids"]) > 256  # the long text is truncated
    reference = SentenceTransformer(str(folder), device="cpu").encode(TEXTS, normalize_embeddings=True)
    with torch.no_grad():
        ours = encoder.encode_text(TEXTS).numpy()  # (10, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


def test_pooling_modes_and_no_normalize(folder, tmp_path):
    """Five pooling modes concatenated, no Normalize module, a shorter max_seq_length: the raw features equal
    sentence-transformers' un-normalised ones."""
    from sentence_transformers import SentenceTransformer

    modes = ["cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
    copy = variant(
        folder, tmp_path / "pooled", modules_of(folder)[:2], {"embedding_dimension": 384, "pooling_mode": modes}
    )
    (copy / "sentence_bert_config.json").unlink()
    (copy / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 12, "do_lower_case": True}), encoding="utf-8"
    )
    encoder = contrastkit.load_encoder(import_encoder(f"sentence-transformers:{copy}", tmp_path / "enc.safetensors"))
    assert encoder.feature_dim == 5 * 384 and not encoder.encoder_info["text_encoder"]["normalize"]
    reference = SentenceTransformer(str(copy), device="cpu").encode(TEXTS, normalize_embeddings=False)
    with torch.no_grad():
        ours = encoder.encode_text(TEXTS, normalize=False).numpy()  # (10, 1920)
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


def refused(capsys, source: str, out: Path, *extra: str) -> str:
    """The one-line error of a refused import through the CLI."""
    assert main(["import-encoder", source, "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("contrastkit import-encoder: error:") and "\n" not in err, err
    assert not out.exists()
    return err


def test_broken_folders_are_refused_by_name(folder, tmp_path, capsys):
    out = tmp_path / "enc.safetensors"
    no_modules = variant(folder, tmp_path / "no_modules")
    (no_modules / "modules.json").unlink()
    assert f"{no_modules}: no modules.json" in refused(capsys, f"sentence-transformers:{no_modules}", out)

    dense = {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    with_dense = variant(folder, tmp_path / "dense", [*modules_of(folder), dense])
    err = refused(capsys, f"sentence-transformers:{with_dense}", out)
    assert f"{with_dense / 'modules.json'}: module '3' (sentence_transformers.models.Dense) is not supported" in err

    from safetensors.torch import load_file, save_file

    renamed = variant(folder, tmp_path / "renamed")
    state = load_file(str(folder / "model.safetensors"))
    state["pooler.dense.kernel"] = state.pop("pooler.dense.weight")
    (renamed / "model.safetensors").unlink()
    save_file(state, str(renamed / "model.safetensors"))
    err = refused(capsys, f"sentence-transformers:{renamed}", out)
    assert f"{renamed / 'model.safetensors'}: the weights do not fit the architecture" in err
    assert "1 missing: pooler.dense.weight; 1 unexpected: pooler.dense.kernel" in err

    assert "leave out --weights" in refused(capsys, f"sentence-transformers:{folder}", out, "--weights", "w.pt")
    assert "does not exist" in refused(capsys, f"sentence-transformers:{tmp_path / 'nowhere'}", out)


def test_imported_tower_takes_token_ids_and_guides(imported):
    """Token ids made ahead by its own tokenizer (TokenTable, as text-pairs training does) give the same features as
    strings; as a guide it re-tokenises another tower's batches."""
    from contrastkit.backbones.dual_encoder import create_text_encoder
    from contrastkit.methods.text_pairs import TextPairs

    tower = contrastkit.load_encoder(imported).model
    anchors, positives = TEXTS[:4], TEXTS[4:8]
    table = TokenTable(tower.tokenizer, tower.max_length, anchors + positives)
    with torch.no_grad():
        sorted_out = embed_by_length(tower, [table.batch(anchors), table.batch(positives)], chunk_size=3)
        torch.testing.assert_close(sorted_out[0], tower(anchors), atol=1e-5, rtol=0)
        torch.testing.assert_close(sorted_out[1], tower(positives), atol=1e-5, rtol=0)

    student = create_text_encoder("transformer", width=16, layers=1, heads=2)
    method = TextPairs(student, guide=str(imported))
    small = TokenTable(student.tokenizer, student.max_length, anchors + positives)
    with torch.no_grad():
        pairs = TextColumns([(p,) for p in positives], [small.batch(positives)])  # as the training batches come
        embedded = method.embed_batch([small.batch(anchors)], pairs)
        assert [tuple(e.shape) for e in embedded] == [(4, 16), (4, 16), (4, 384), (4, 384)]
        torch.testing.assert_close(embedded[2], tower(anchors), atol=1e-5, rtol=0)
        torch.testing.assert_close(embedded[3], tower(positives), atol=1e-5, rtol=0)


def test_cli_embed_with_the_imported_encoder(imported, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(t.replace("\n", " ") for t in TEXTS if t.strip()) + "\n", encoding="utf-8")
    assert main(["embed", str(imported), str(texts), "--out", str(tmp_path / "emb"), "--batch-size", "4"]) == 0
    assert "x 384 float32 text embeddings" in capsys.readouterr().out
    rows = np.load(tmp_path / "emb" / "embeddings.npy")
    stored = (tmp_path / "emb" / "ids.txt").read_text(encoding="utf-8").splitlines()
    with torch.no_grad():
        expected = contrastkit.load_encoder(imported).encode_text(stored[:3]).numpy()
    np.testing.assert_allclose(rows[:3], expected, atol=1e-5, rtol=0)
