"""No command destroys an output (issue 27): every command that writes refuses an existing output unless
--overwrite, never writes over one of its inputs, and publishes its output only when complete."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.backbones import create_backbone, save_encoder
from contrastkit.cli.main import main
from tests.index.helpers import random_images, tiny_image_encoder


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


@pytest.fixture
def encoder(tmp_path):
    return tiny_image_encoder(tmp_path / "enc.safetensors")


@pytest.fixture
def checkpoint(tmp_path):
    """A minimal training checkpoint of the tiny encoder, as contrastkit train writes it."""
    torch.manual_seed(0)
    backbone = create_backbone("small_cnn", in_chans=1, widths=(4, 8, 16))
    info = {"backbone": "small_cnn", "in_chans": 1, "small_input": False, "input_size": 12, "mean": [0.5],
            "std": [0.25], "backbone_kwargs": {"widths": [4, 8, 16]}}  # fmt: skip
    keys = {k: f"method.backbone.{k}" for k in backbone.state_dict()}
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    state = {f"method.backbone.{k}": v for k, v in backbone.state_dict().items()}
    torch.save({"state_dict": state, "contrastkit": {"info": info, "encoder_keys": keys}}, path)
    return path


def test_export_never_writes_over_its_checkpoint_or_an_earlier_encoder(checkpoint, tmp_path, capsys):
    before = checkpoint.read_bytes()
    assert main(["export", str(checkpoint), "--out", str(checkpoint), "--overwrite"]) == 2
    assert "is also this command's input" in capsys.readouterr().err and checkpoint.read_bytes() == before
    out = tmp_path / "encoder.safetensors"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    first = _digest(tmp_path)
    assert main(["export", str(checkpoint), "--out", str(out)]) == 2
    assert "exists already: pass --overwrite" in capsys.readouterr().err and _digest(tmp_path) == first
    out.with_suffix(".json").unlink()
    assert main(["export", str(checkpoint), "--out", str(out)]) == 2  # the weights alone are an earlier output too
    assert main(["export", str(checkpoint), "--out", str(out), "--overwrite"]) == 0
    assert _digest(tmp_path) == first  # the same export again, whole, and nothing left beside it
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "x.json")]) == 2


def test_import_encoder_never_writes_over_its_weights(tmp_path, capsys):
    weights = tmp_path / "resnet.pth"
    weights.write_bytes(b"weights the user downloaded")
    assert main(["import-encoder", "torchvision:resnet18", "--weights", str(weights), "--out", str(weights)]) == 2
    assert "is also this command's input" in capsys.readouterr().err
    assert weights.read_bytes() == b"weights the user downloaded"


def test_embed_refuses_an_earlier_output_and_replaces_it_whole_with_overwrite(encoder, tmp_path, capsys):
    images = random_images(tmp_path / "images", 6)
    out = tmp_path / "emb"
    assert main(["embed", str(encoder), str(images), "--out", str(out), "--quiet", "--num-workers", "0"]) == 0
    first = _digest(out)
    assert main(["embed", str(encoder), str(images), "--out", str(out), "--quiet"]) == 2
    assert "holds an earlier output: pass --overwrite" in capsys.readouterr().err and _digest(out) == first
    (images / "img05.png").unlink()  # a different data set: 5 rows
    argv = ["embed", str(encoder), str(images), "--out", str(out), "--quiet", "--num-workers", "0", "--overwrite"]
    assert main(argv) == 0
    assert np.load(out / "embeddings.npy").shape[0] == 5 and len((out / "ids.txt").read_text().splitlines()) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb", "enc.json", "enc.safetensors", "images"]
    # into the data folder itself, or over a folder of other files: refused, --overwrite or not
    assert main(["embed", str(encoder), str(images), "--out", str(images), "--overwrite"]) == 2
    assert "is also this command's input" in capsys.readouterr().err
    assert main(["embed", str(encoder), str(images), "--out", str(tmp_path), "--overwrite"]) == 2
    assert "holds this command's input" in capsys.readouterr().err
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("mine")
    assert main(["embed", str(encoder), str(images), "--out", str(docs), "--overwrite"]) == 2
    assert "folder of other files" in capsys.readouterr().err and (docs / "notes.txt").read_text() == "mine"


def test_an_unsharded_embed_into_a_shard_folder_is_refused(encoder, tmp_path, capsys):
    images = random_images(tmp_path / "images", 5)
    out = tmp_path / "shards"
    args = ["embed", str(encoder), str(images), "--out", str(out), "--quiet", "--num-workers", "0"]
    assert main([*args, "--shard-size", "2"]) == 0 and (out / "manifest.json").is_file()
    before = _digest(out)
    assert main(args) == 2
    assert "holds an earlier output" in capsys.readouterr().err and _digest(out) == before
    assert main([*args, "--shard-size", "2", "--overwrite"]) == 2  # a shard job is finished by running it again
    assert "without --overwrite" in capsys.readouterr().err


def test_embedding_only_unreadable_images_is_refused_and_writes_nothing(encoder, tmp_path, capsys):
    images = tmp_path / "broken"
    images.mkdir()
    for i in range(3):
        (images / f"b{i}.png").write_bytes(b"not a png")
    assert main(["embed", str(encoder), str(images), "--out", str(tmp_path / "emb"), "--quiet",
                 "--num-workers", "0"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "none of its 3 images could be read (first: " in err and "nothing was written" in err
    assert not (tmp_path / "emb").exists() and not list(tmp_path.glob(".emb*"))


def test_index_build_refuses_an_earlier_index_and_its_own_input(encoder, tmp_path, capsys):
    images = random_images(tmp_path / "images", 6)
    emb = tmp_path / "emb"
    assert main(["embed", str(encoder), str(images), "--out", str(emb), "--quiet", "--num-workers", "0"]) == 0
    before = _digest(emb)
    assert main(["index", "build", str(emb), "--out", str(emb / "embeddings.npy"), "--overwrite"]) == 2
    assert "is a file of the input folder" in capsys.readouterr().err and _digest(emb) == before
    index = tmp_path / "gallery.faiss"
    assert main(["index", "build", str(emb), "--out", str(index)]) == 0
    files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("gallery"))
    assert files == ["gallery.faiss", "gallery.faiss.ids.txt", "gallery.faiss.json", "gallery.faiss.source.json"]
    earlier = _digest(tmp_path)
    assert main(["index", "build", str(emb), "--out", str(index)]) == 2
    assert "exists already" in capsys.readouterr().err and _digest(tmp_path) == earlier
    assert main(["index", "build", str(emb), "--out", str(index), "--overwrite"]) == 0
    assert json.loads((tmp_path / "gallery.faiss.json").read_text())["count"] == 6


@pytest.fixture
def classifier_run(tmp_path):
    torch.manual_seed(0)
    backbone = create_backbone("small_cnn", in_chans=1, small_input=True).eval()
    info = {"backbone": "small_cnn", "in_chans": 1, "input_size": 8, "mean": [0.5], "std": [0.5], "small_input": True}
    encoder = save_encoder(backbone, tmp_path / "encoder.safetensors", info)
    args = ["finetune", str(encoder), "--data", "digits", "--labels-per-class", "2", "--freeze", "--no-scratch",
            "--out-dir", str(tmp_path), "--name", "ft"]  # fmt: skip
    assert main(args) == 0
    return tmp_path / "ft", args


def test_finetune_and_predict_keep_earlier_outputs(classifier_run, tmp_path, capsys):
    run, args = classifier_run
    before = _digest(run)
    assert main(args) == 2 and "holds an earlier output" in capsys.readouterr().err
    assert main([*args[:-1], "../escape"]) == 2 and not (tmp_path.parent / "escape").exists()
    assert "is not a folder name inside --out-dir" in capsys.readouterr().err
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(images / "a.png")
    assert main(["predict", str(run), str(images), "--out", str(run / "finetune.json"), "--overwrite"]) == 2
    assert "is a file of the input folder" in capsys.readouterr().err and _digest(run) == before
    out = tmp_path / "p.csv"
    assert main(["predict", str(run), str(images), "--out", str(out)]) == 0
    assert main(["predict", str(run), str(images), "--out", str(out)]) == 2
    assert "exists already" in capsys.readouterr().err
    (images / "b.png").write_bytes(b"broken")
    (images / "a.png").write_bytes(b"broken too")
    assert main(["predict", str(run), str(images), "--out", str(out), "--overwrite"]) == 2  # nothing readable
    assert "none of the 2 files could be read" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 2  # the earlier predictions are kept whole
    assert main([*args, "--overwrite"]) == 0 and _digest(run).keys() == before.keys()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left


def test_mine_negatives_and_report_refuse_an_earlier_output_before_reading_anything(tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"anchor": "a", "positive": "b"}\n')
    mined = tmp_path / "mined.jsonl"
    mined.write_text("earlier\n")
    assert main(["mine-negatives", str(pairs), "--encoder", "missing.safetensors", "--out", str(mined)]) == 2
    assert "exists already: pass --overwrite" in capsys.readouterr().err and mined.read_text() == "earlier\n"
    assert main(["mine-negatives", str(pairs), "--encoder", "x", "--out", str(pairs), "--overwrite"]) == 2
    assert "is also this command's input" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.html").write_text("earlier")
    assert main(["report", str(run)]) == 2
    assert "report.html exists already" in capsys.readouterr().err
    (run / "config.json").write_text("{}")
    assert main(["report", str(run), "--out", str(run / "config.json"), "--overwrite"]) == 2
    assert "is also this command's input" in capsys.readouterr().err and (run / "config.json").read_text() == "{}"


def test_mine_negatives_publishes_the_pairs_and_their_statistics_together(minilm, doc_pairs, tmp_path):
    info = {"kind": "text", "text_encoder": minilm.text_config}
    encoder = save_encoder(minilm, tmp_path / "minilm.safetensors", info)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"anchor": p["anchor"], "positive": p["positive"]}) + "\n"
                             for p in doc_pairs[:40]))  # fmt: skip
    out = tmp_path / "mined.jsonl"
    args = ["mine-negatives", str(pairs), "--encoder", str(encoder), "--out", str(out), "--range", "2:10"]
    assert main(args) == 0 and main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mined.jsonl", "mined.jsonl.mining.json", "minilm.json",
                                                          "minilm.safetensors", "pairs.jsonl"]  # fmt: skip


def test_an_embed_killed_half_way_leaves_the_earlier_output_whole(encoder, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "emb"
    args = [sys.executable, "-m", "contrastkit", "embed", str(encoder), "digits", "--out", str(out), "--quiet",
            "--num-workers", "0"]  # fmt: skip
    assert subprocess.run([*args, "--split", "test"], capture_output=True, timeout=300).returncode == 0
    earlier = _digest(out)
    process = subprocess.Popen([*args, "--batch-size", "1", "--overwrite"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not any(tmp_path.glob(".emb.partial-*/ids.txt")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # half-way through the new embedding
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert _digest(out) == earlier  # the earlier output, whole: 360 test rows, not a mix
    assert len(list(tmp_path.glob(".emb.partial-*"))) == 1
    assert subprocess.run([*args, "--split", "test", "--overwrite"], capture_output=True, timeout=300).returncode == 0
    assert not list(tmp_path.glob(".emb.*")) and _digest(out)["embeddings.npy"] == earlier["embeddings.npy"]
