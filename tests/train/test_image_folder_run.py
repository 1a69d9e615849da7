"""`contrastkit train RECIPE data.path=FOLDER`: your own images, resized, a corrupt file skipped and counted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.train.config import load_config
from contrastkit.train.fit import train


def test_train_on_a_folder_of_images_with_a_corrupt_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(40):
            size = (int(rng.integers(20, 40)), int(rng.integers(20, 40)))  # mixed sizes, RGB
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{i}.png")
    (tmp_path / "images" / "cats" / "broken.png").write_bytes(b"not a png")
    config = load_config(
        "simclr-fashion-mnist",
        [
            f"data.path={tmp_path / 'images'}",
            "data.image_size=16",
            "data.batch_size=16",
            "data.num_workers=0",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "monitor.bank_size=40",
            "monitor.query_size=20",
            "monitor.knn_k=5",
            "final_eval.enabled=false",
            f"out_dir={tmp_path / 'runs'}",
        ],
    )
    result = train(config)
    out = capsys.readouterr().out
    assert "broken.png" in out and "1" in out  # the skip report names the file
    assert result.monitor and 0.0 <= result.monitor[0]["knn/top1"] <= 1.0  # class folders give labels
    info = (result.run_dir / "encoder.json").read_text()
    assert '"in_chans": 3' in info and '"input_size": 16' in info


def test_a_folder_of_small_grayscale_images_is_read_at_their_own_size(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(24):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), mode="L").save(
                tmp_path / "images" / label / f"{i}.png"
            )
    config = load_config(
        "simclr-fashion-mnist",
        [
            f"data.path={tmp_path / 'images'}",
            "data.batch_size=16",
            "data.num_workers=0",
            "trainer.max_steps=1",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "final_eval.enabled=false",
            f"out_dir={tmp_path / 'runs'}",
        ],
    )
    result = train(config)
    assert "read at 28 x 28 pixels, 1 channel(s) (from its images" in capsys.readouterr().out
    info = (result.run_dir / "encoder.json").read_text()
    assert '"in_chans": 1' in info and '"input_size": 28' in info  # not 256 x 256 RGB
    # 48 labelled images, fewer than monitor.query_size: the monitor scales down (a fifth held out as queries)
    assert result.monitor and 0.0 <= result.monitor[0]["knn/top1"] <= 1.0


def test_a_first_batch_of_only_unreadable_images_trains_on(tmp_path, capsys):
    """Most files corrupt: some batches (the first included, for this seed) hold no readable image, others one;
    they train nothing and the run goes on (Lightning's throughput monitor refused a batch of no samples, and the
    heads' BatchNorm a batch of one: either stopped the run)."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), mode="L").save(folder / f"good{i}.png")
    for i in range(28):
        (folder / f"bad{i:02d}.png").write_bytes(b"not a png")
    config = load_config(
        "simclr-fashion-mnist",
        [
            f"data.path={folder}",
            "data.batch_size=2",
            "data.num_workers=0",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "monitor.every_n_epochs=0",
            "final_eval.enabled=false",
            "seed=1",
            f"out_dir={tmp_path / 'runs'}",
        ],
    )
    from contrastkit.data import ImageFolderDataset
    from contrastkit.train.batch_samplers import ShardedBatchSampler

    files = [path for path, _ in ImageFolderDataset(str(folder)).samples]
    first = next(iter(ShardedBatchSampler(len(files), 2, 0, 1, config.seed)))
    assert all("bad" in files[i] for i in first)  # the case under test: the first batch has nothing readable
    result = train(config)
    assert result.encoder.is_file()
    assert "28" in capsys.readouterr().out  # every corrupt file skipped and counted once


def test_decoding_on_the_device_trains_exactly_as_decoding_in_the_workers(tmp_path, capsys):
    """data.decode=device (here the CPU is the device): the same batches, so the same weights after 3 steps; the
    truncated JPEG, which the device's batched decode refuses, is skipped and named as the workers name it."""
    from safetensors.torch import load_file

    from tests.data.test_skip_report import photo_jpegs

    folder = tmp_path / "images"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
    for i, data in enumerate(photo_jpegs().values()):
        for copy in range(3):  # 27 JPEGs of 9 kinds: grey, progressive, odd sizes, 4:4:4 ...
            (folder / ("a" if (i + copy) % 2 else "b") / f"{i}-{copy}.jpg").write_bytes(data)
    whole = photo_jpegs()["500x375 q90 4:2:0"]
    (folder / "a" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    weights = {}
    for decode, workers in (("workers", 0), ("device", 2)):
        config = load_config(
            "simclr-fashion-mnist",
            [
                f"data.path={folder}",
                "data.image_size=100",  # the 427 x 640 photographs decode at 1/2 scale (>= 4 x 100), the others whole
                "data.channels=3",
                "data.batch_size=8",
                f"data.num_workers={workers}",
                f"data.decode={decode}",
                "trainer.max_steps=3",
                "trainer.accelerator=cpu",
                "trainer.enable_progress_bar=false",
                "monitor.every_n_epochs=0",
                "final_eval.enabled=false",
                f"name={decode}",
                f"out_dir={tmp_path / 'runs'}",
            ],
        )
        result = train(config)
        assert "truncated.jpg" in capsys.readouterr().out
        weights[decode] = load_file(result.encoder)
    assert weights["workers"].keys() == weights["device"].keys()
    assert all(torch.equal(weights["workers"][k], weights["device"][k]) for k in weights["workers"])


def test_decoding_on_the_device_is_refused_for_data_that_is_not_a_folder(tmp_path):
    import io
    import tarfile

    shards = tmp_path / "shards"  # a folder, of tar shards: streamed by the workers
    shards.mkdir()
    with tarfile.open(shards / "000000.tar", "w") as tar:
        for name, data in (("0.jpg", photo_jpegs_first()), ("0.cls", b"0")):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    for data in ("data.name=digits", f"data.path={shards}"):
        config = load_config("simclr-fashion-mnist", [data, "data.decode=device", f"out_dir={tmp_path / 'runs'}"])
        with pytest.raises(ValueError, match=r"data\.decode=device decodes the JPEGs of an image folder, and .* not"):
            train(config)
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


def photo_jpegs_first() -> bytes:
    from tests.data.test_skip_report import photo_jpegs

    return next(iter(photo_jpegs().values()))
