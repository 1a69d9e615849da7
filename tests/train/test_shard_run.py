"""`contrastkit train ... data.path=shards-{000..N}.tar`: a WebDataset stream with corrupt members, samples without
an image and a truncated shard mixed into good shards trains to the end, every bad member counted once and named;
a mid-epoch resume continues the same stream."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image
from sklearn.datasets import load_digits

from contrastkit.data.shard_epochs import count_shard_samples
from contrastkit.data.webdataset_shards import expand_shards
from contrastkit.train.fit import train
from tests.train.helpers import tiny_config
from tests.train.test_resume import CrashAt

BAD = {"shard-001/d00050.png": "not an image", "shard-002/d00090": "no image in sample"}


def write_shards(folder) -> str:
    """4 shards of 40 digits (8 x 8 grey PNGs), one member of shard 1 random bytes, one sample of shard 2 without
    its image, and shard 3 cut in the middle of a member."""
    digits = load_digits()
    images = (digits.images / 16 * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    for s in range(4):
        with wds.TarWriter(str(folder / f"shard-{s:03d}.tar")) as sink:
            for i in range(s * 40, s * 40 + 40):
                buffer = io.BytesIO()
                Image.fromarray(images[i]).save(buffer, "PNG")
                sample = {"__key__": f"d{i:05d}", "png": buffer.getvalue(), "cls": int(digits.target[i])}
                if i == 50:
                    sample["png"] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
                if i == 90:
                    del sample["png"]
                sink.write(sample)
    last = folder / "shard-003.tar"
    last.write_bytes(last.read_bytes()[: 20 * 1024 + 700])  # 20 KiB of 40 samples, cut inside a member
    return str(folder / "shard-{000..003}.tar")


def shard_config(tmp_path, pattern, *overrides):
    return tiny_config(
        tmp_path, f"data.path={pattern}", "data.batch_size=16", "trainer.max_epochs=2", "views.crop_scale=[0.5,1.0]",
        *overrides,
    )  # fmt: skip


def test_a_stream_with_bad_members_trains_to_the_end_counting_each_once(tmp_path, capsys):
    pattern = write_shards(tmp_path)
    result = train(shard_config(tmp_path / "run", pattern))
    out = capsys.readouterr().out
    assert "4 shards" in out and "streamed" in out and "read at 8 x 8 pixels, 1 channel(s)" in out
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    samples = count_shard_samples(expand_shards(pattern))
    assert 120 < samples < 160  # the cut shard counts the samples before the cut
    assert state["global_step"] == 2 * -(-samples // 16)  # both epochs ran to their end, every sample read
    report = out[out.index("Skipped ") :]
    assert report.startswith("Skipped 3 of ")  # 2 bad members + 1 truncated shard, each once over 2 epochs
    assert "shard-001.tar/d00050.png: not an image" in report
    assert "shard-002.tar/d00090: no image in sample" in report
    assert "shard-003.tar: unreadable shard" in report
    # the run's report: curves, and a reason in place of the image map a stream cannot give
    from contrastkit.cli.main import main

    assert main(["report", str(result.run_dir)]) == 0
    assert "streamed .tar shards are not indexed" in (result.run_dir / "report.html").read_text()


def test_a_stream_resumes_mid_epoch_on_the_same_batches(tmp_path):
    pattern = write_shards(tmp_path)
    step_ckpt = "trainer.checkpoint_every_n_steps=2"
    full = train(shard_config(tmp_path / "full", pattern, step_ckpt))
    crashed = shard_config(tmp_path / "crash", pattern, step_ckpt)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(crashed, callbacks=[CrashAt(epoch=1, batch=3)])
    resumed = train(shard_config(tmp_path / "crash", pattern, step_ckpt, "resume=last"))
    a = torch.load(full.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(resumed.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=f"{key} differs")


def test_a_stream_resumed_from_an_epoch_end_reads_the_next_epochs_order(tmp_path):
    """From an end-of-epoch checkpoint the next epoch's shuffle order is read (not epoch 0's again)."""
    pattern = write_shards(tmp_path)
    full = train(shard_config(tmp_path / "full", pattern))
    crashed = shard_config(tmp_path / "crash", pattern)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(crashed, callbacks=[CrashAt(epoch=1, batch=0)])  # last.ckpt: the end of epoch 0
    resumed = train(shard_config(tmp_path / "crash", pattern, "resume=last"))
    a = torch.load(full.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(resumed.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=f"{key} differs")
