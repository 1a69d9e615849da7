"""`contrastkit prepare FOLDER --out SHARDS`: a folder of photographs written as tar shards of images already at
the training size; what the shards hold against the folder brought to size as training does, one unreadable file
skipped and named once, the output protected, and a run that trains from the shards folder."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_images

from contrastkit.cli.main import main
from contrastkit.data import load_dataset
from contrastkit.data.decode_image import decode_image
from contrastkit.data.resize_center_crop import resize_center_crop
from contrastkit.data.webdataset_shards import WebDatasetShards


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """13 crops of scikit-learn's two photographs (two classes, JPEG and PNG, various shapes) and one broken file."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for c, photo in enumerate(load_sample_images().images):  # (427, 640, 3) each
        (folder / f"class{c}").mkdir()
        for i in range(6 + c):
            h, w = int(rng.integers(60, 200)), int(rng.integers(60, 200))
            top, left = int(rng.integers(0, 427 - h)), int(rng.integers(0, 640 - w))
            crop = Image.fromarray(photo[top : top + h, left : left + w])
            crop.save(folder / f"class{c}" / f"{i}.{'png' if i % 3 == 0 else 'jpg'}", quality=92)
    (folder / "class1" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return folder


def _members(shard) -> dict[str, bytes]:
    with tarfile.open(shard) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_the_shards_hold_every_readable_image_at_the_training_size(photos, tmp_path, capsys):
    out = tmp_path / "shards"
    args = ["prepare", str(photos), "--out", str(out), "--image-size", "48", "--shard-size", "5", "--workers", "0"]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert "wrote 13 images, 2 classes at 48 px into 3 shards" in printed.out
    assert f"data.path={out}" in printed.out
    assert printed.err.count("broken.jpg") == 1  # skipped, named once
    summary = json.loads((out / "prepare.json").read_text())
    assert summary["images"] == 13 and summary["classes"] == ["class0", "class1"] and len(summary["skipped"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["prepare.json", *(f"shard-{i:06d}.tar" for i in range(3))]
    members = {}
    for shard in summary["shards"]:
        members.update(_members(out / shard))
    assert len(members) == 26  # a .jpg and a .cls for each image
    readable = [p for p in sorted((photos / "class0").iterdir()) + sorted((photos / "class1").iterdir())
                if p.name != "broken.jpg"]  # fmt: skip
    for key, path in enumerate(readable):  # the folder's order
        stored = decode_image(members[f"{key:08d}.jpg"], 3)  # (3, 48, 48)
        expected = resize_center_crop(decode_image(path.read_bytes(), 3), 48)  # what training makes of the file
        assert stored.shape == (3, 48, 48)
        assert (stored.float() - expected.float()).abs().mean() < 3.0  # JPEG at quality 95 (~2 levels at 48 px)
        assert int(members[f"{key:08d}.cls"]) == int(path.parent.name[-1])
    # at quality 100 the stored pixels are those training makes of the files, to half a grey level
    assert main([*args[:-6], "--image-size", "48", "--quality", "100", "--workers", "0", "--overwrite"]) == 0
    first = _members(out / "shard-000000.tar")["00000000.jpg"]
    expected = resize_center_crop(decode_image(readable[0].read_bytes(), 3), 48)
    assert (decode_image(first, 3).float() - expected.float()).abs().mean() < 0.6
    # the folder of shards is data as it is: a stream of (image, class)
    data = load_dataset(str(out))
    assert isinstance(data, WebDatasetShards)
    items = list(data)
    assert len(items) == 13 and {int(t) for _, t in items} == {0, 1}
    assert all(image.shape == (3, 48, 48) for image, _ in items)


def test_the_output_is_protected_and_bad_settings_are_refused_first(photos, tmp_path, capsys):
    out = tmp_path / "shards"
    base = ["prepare", str(photos), "--out", str(out), "--image-size", "32", "--workers", "0"]
    assert main(base) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(base) == 2 and "--overwrite" in capsys.readouterr().err  # an earlier output is never replaced
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main([*base, "--overwrite", "--quality", "0"]) == 2  # refused before anything is read or removed
    assert "quality must be in [1, 100]" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main(["prepare", str(photos), "--out", str(photos / "class0"), "--workers", "0"]) == 2  # inside the input
    capsys.readouterr()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["prepare", str(empty), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "contains no image files" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_a_run_trains_from_the_prepared_folder(photos, tmp_path, capsys):
    from contrastkit.train.fit import train
    from tests.train.helpers import tiny_config

    out = tmp_path / "shards"
    assert main(["prepare", str(photos), "--out", str(out), "--image-size", "32", "--shard-size", "4",
                 "--workers", "1"]) == 0  # fmt: skip
    capsys.readouterr()
    config = tiny_config(tmp_path / "run", f"data.path={out}", "data.batch_size=4", "data.channels=3",
                         "trainer.max_epochs=1", "views.crop_scale=[0.5,1.0]")  # fmt: skip
    result = train(config)
    printed = capsys.readouterr().out
    assert "4 shards" in printed and "13 samples" in printed and "read at 32 x 32 pixels" in printed
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert state["global_step"] == 4  # 13 samples in batches of 4: every sample once
