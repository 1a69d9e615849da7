"""Sharded `contrastkit embed`: 2 processes (torchrun) write exactly the embeddings and ids of 1, a restarted job
skips finished shards, another job's folder is refused, and index build reads the shards as one folder."""

from __future__ import annotations

import json
import os
import sys
from unittest import mock

import numpy as np
import pytest

from contrastkit.cli.main import main
from contrastkit.index.embedding_shards import Embeddings
from tests.index.helpers import random_images, tiny_image_encoder
from tests.train.helpers import run_process_group


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    encoder = tiny_image_encoder(tmp / "enc.safetensors")
    folder = random_images(tmp / "imgs", 23)
    (folder / "broken.png").write_bytes(b"not a png")  # skipped and counted, in whichever shard holds it
    reference = tmp / "single"
    assert main(["embed", str(encoder), str(folder), "--out", str(reference), "--num-workers", "0", "--quiet"]) == 0
    return encoder, folder, reference


def embed(encoder, folder, out, *extra, env=None):
    """``contrastkit embed`` in this process, on the CPU (a GPU's TF32 arithmetic would not match the reference)."""
    args = ["embed", str(encoder), str(folder), "--out", str(out), "--num-workers", "0", "--quiet", *extra]
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        with mock.patch("torch.cuda.is_available", return_value=False):
            return main(args)
    finally:
        os.environ.clear()
        os.environ.update(old)


def same_as_reference(out, reference):
    sharded, single = Embeddings(out), Embeddings(reference)
    assert sharded.ids == single.ids and len(sharded) == 23
    np.testing.assert_allclose(sharded.array(), single.array(), rtol=0, atol=1e-6)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["path"] for s in manifest["shards"]] == [f"shard-{i:05d}" for i in range(4)]  # 24 inputs / 7
    assert [s["reason"] for s in manifest["skipped"]] == [single.info["skipped"][0]["reason"]]


def test_two_processes_write_exactly_what_one_writes(images, tmp_path):
    encoder, folder, reference = images
    out = tmp_path / "two"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
               "contrastkit", "embed", str(encoder), str(folder), "--out", str(out), "--shard-size", "7",
               "--num-workers", "0", "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # the CPU reference's arithmetic
    done = run_process_group(command, env, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "process 0/2: embedded 2 of its 2 shards" in done.stdout and "process 1/2" in done.stdout
    same_as_reference(out, reference)
    # the index reads the sharded folder as one: each image finds itself first
    assert main(["index", "build", str(out), "--out", str(tmp_path / "g.faiss")]) == 0
    from contrastkit.index import search_image

    assert search_image(tmp_path / "g.faiss", str(folder / "img05.png"), 1)[0][1].endswith("img05.png")


def test_a_restarted_job_skips_finished_shards_and_replaces_partial_ones(images, tmp_path, capsys):
    encoder, folder, reference = images
    out = tmp_path / "restart"
    # a first attempt on 2 "processes" where only process 0 ran (its shards 0 and 2), and a shard left half-written
    assert embed(encoder, folder, out, "--shard-size", "7", env={"RANK": "0", "WORLD_SIZE": "2"}) == 0
    assert "embedded 2 of its 2 shards" in capsys.readouterr().out
    with pytest.raises(ValueError, match="has not finished"):
        Embeddings(out)
    partial = out / ".shard-00001.partial"
    partial.mkdir()
    (partial / "embeddings.npy").write_bytes(b"half a file")
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*/embeddings.npy") for p in [p.parent]}
    # restarted as one process: only shards 1 and 3 are embedded
    assert embed(encoder, folder, out, "--shard-size", "7") == 0
    assert "embedded 2 of its 4 shards, skipped 2 finished earlier; all 4 shards finished" in capsys.readouterr().out
    for name, mtime in finished.items():
        assert (out / name).stat().st_mtime_ns == mtime  # untouched
    assert not partial.exists()
    same_as_reference(out, reference)


def test_a_folder_of_another_job_is_refused_untouched(images, tmp_path, capsys):
    encoder, folder, _ = images
    out = tmp_path / "job"
    assert embed(encoder, folder, out, "--shard-size", "7") == 0
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.rglob("*"))
    assert embed(encoder, folder, out, "--shard-size", "5") == 2
    assert "holds the shards of another embedding job (shard_size: 7 -> 5)" in capsys.readouterr().err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.rglob("*")) == before
    assert embed(encoder, folder, out, "--shard-size", "0") == 2
    assert "--shard-size must be >= 1" in capsys.readouterr().err


def test_a_real_embed_killed_half_way_resumes_without_recomputing_finished_shards(tmp_path, capsys):
    """SIGKILL a real ``contrastkit embed`` process once two of its shards are on disk, run the same command again:
    the finished shards are kept as they are, the half-written one is replaced, the result equals an uninterrupted
    job's."""
    import signal
    import subprocess
    import time

    import torch

    from contrastkit.backbones import create_backbone, save_encoder

    torch.manual_seed(0)  # an encoder slow enough (96-pixel inputs) that the job is still running when polled
    backbone = create_backbone("small_cnn", in_chans=1, widths=(32, 64, 128))
    info = {"backbone": "small_cnn", "in_chans": 1, "small_input": False, "input_size": 96, "mean": [0.5],
            "std": [0.25], "backbone_kwargs": {"widths": [32, 64, 128]}}  # fmt: skip
    encoder = save_encoder(backbone.eval(), tmp_path / "enc.safetensors", info)
    folder = random_images(tmp_path / "imgs", 60)
    extra = ("--shard-size", "4", "--batch-size", "4")
    assert embed(encoder, folder, tmp_path / "uninterrupted", *extra) == 0
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "contrastkit", "embed", str(encoder), str(folder), "--out", str(out),
               "--num-workers", "0", "--quiet", *extra]  # fmt: skip
    process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "shard-00001" / "embed.json").is_file():
        assert process.poll() is None and time.monotonic() < deadline, "embed ended before it could be killed"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (out / "manifest.json").exists(), "the job finished before the kill: make the encoder slower"
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("shard-*/embeddings.npy")}
    assert 2 <= len(finished) < 15
    capsys.readouterr()
    assert embed(encoder, folder, out, *extra) == 0
    assert f"embedded {15 - len(finished)} of its 15 shards, skipped {len(finished)} finished earlier" in (
        capsys.readouterr().out
    )
    assert {p.parent.name: p.stat().st_mtime_ns for p in out.glob("shard-*/embeddings.npy") if p.parent.name in
            finished} == finished  # fmt: skip
    assert not list(out.glob(".shard-*.partial"))
    killed, whole = Embeddings(out), Embeddings(tmp_path / "uninterrupted")
    assert killed.ids == whole.ids and len(killed) == 60
    np.testing.assert_allclose(killed.array(), whole.array(), rtol=0, atol=1e-6)  # 1 thread there, 2 here
