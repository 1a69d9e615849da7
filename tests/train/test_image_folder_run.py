"""`contrastkit train RECIPE data.path=FOLDER`: your own images, resized, a corrupt file skipped and counted."""

from __future__ import annotations

import numpy as np
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
