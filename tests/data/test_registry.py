"""The data set registry and load_dataset's dispatch: names, splits, paths, and the errors' messages."""

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from contrastkit.data import registry
from contrastkit.data.array_dataset import ArrayImageDataset
from contrastkit.data.load_dataset import load_dataset
from contrastkit.data.registry import check_split, get_dataset, list_datasets, register_dataset


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry, so test registrations do not leak."""
    list_datasets()  # built-ins registered first
    monkeypatch.setattr(registry, "_REGISTRY", registry._REGISTRY.copy())


def _png(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(path)


def test_builtins_are_listed_sorted():
    names = list_datasets()
    assert names == sorted(names)
    assert {"digits", "fashion-mnist", "cifar10", "stl10"} <= set(names)
    assert get_dataset("fashion-mnist").splits == ("train", "test")


def test_function_name_underscores_become_hyphens(scratch_registry):
    @register_dataset(splits=("train",))
    def my_tiny_set(split="train", root=None, download=False):
        return ArrayImageDataset(np.zeros((2, 1, 2, 2), np.uint8), [0, 1], ["a", "b"])

    assert "my-tiny-set" in list_datasets()
    ds = load_dataset("my-tiny-set")
    assert len(ds) == 2 and ds.classes == ["a", "b"]
    assert len(load_dataset("My_Tiny_Set")) == 2  # a registered name written differently


def test_bare_decorator_and_duplicate_name_raises(scratch_registry):
    @register_dataset
    def dup_set(split="train", root=None, download=False):
        return None

    def other(split="train", root=None, download=False):
        return None

    other.__name__ = "dup_set"
    with pytest.raises(ValueError, match=r"'dup-set' is already registered by .*test_registry.*dup_set"):
        register_dataset(other)
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(name="digits")(other)
    register_dataset(dup_set)  # the same function again (a module reload) replaces its entry


def test_unknown_name_lists_names_kinds_and_suggestion():
    with pytest.raises(ValueError) as info:
        load_dataset("fashion_mnst")
    message = str(info.value)
    assert "unknown data set 'fashion_mnst'" in message
    assert "Did you mean 'fashion-mnist'?" in message
    assert "cifar10, digits, fashion-mnist, stl10" in message
    for kind in ("folder of images", ".csv", ".jsonl", "shards-{000..009}.tar", "folder of only .tar files"):
        assert kind in message
    with pytest.raises(ValueError) as info:
        load_dataset("qqqqqqqq")
    assert "Did you mean" not in str(info.value)


def test_unknown_split_names_it_and_the_valid_ones_before_building(scratch_registry):
    calls = []

    @register_dataset(splits=("train", "val"))
    def counted_set(split="train", root=None, download=False):
        calls.append(split)

    with pytest.raises(ValueError, match=r"data set 'counted-set' has no split 'test'; valid splits: 'train', 'val'"):
        load_dataset("counted-set", split="test")
    assert calls == []
    with pytest.raises(ValueError, match=r"no split 'validation'; valid splits: 'train', 'test', 'all'"):
        load_dataset("digits", split="validation")
    with pytest.raises(ValueError, match=r"'stl10' has no split 'train\+unlabeled'"):
        check_split("stl10", "train+unlabeled", get_dataset("stl10").splits)


def test_folder_becomes_image_folder(tmp_path):
    _png(tmp_path / "cat" / "a.png")
    _png(tmp_path / "dog" / "b.png")
    ds = load_dataset(tmp_path)
    assert type(ds).__name__ == "ImageFolderDataset"
    assert ds.classes == ["cat", "dog"] and len(ds) == 2
    image, target = ds[1]
    assert image.shape == (3, 4, 4) and target == 1
    with pytest.raises(ValueError, match="split='test' applies to built-in data sets only"):
        load_dataset(tmp_path, split="test")
    with pytest.raises(ValueError, match="download=True applies to built-in data sets only"):
        load_dataset(tmp_path, download=True)


def test_listing_files_become_image_text(tmp_path):
    _png(tmp_path / "img" / "a.png")
    (tmp_path / "pairs.csv").write_text("image,caption\nimg/a.png,a grey square\n")
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"file": "img/a.png", "text": "grey"}) + "\n")
    ds = load_dataset(tmp_path / "pairs.csv")
    assert type(ds).__name__ == "ImageTextDataset" and ds[0][1] == "a grey square"
    ds = load_dataset(str(tmp_path / "pairs.jsonl"), image_column="file", caption_column="text")
    assert ds[0][1] == "grey"


def _shard(path, n):
    with tarfile.open(path, "w") as tar:
        for i in range(n):
            for ext, data in (("png", _png_bytes()), ("cls", b"1")):
                info = tarfile.TarInfo(f"{path.stem}_{i:03d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def _png_bytes():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_tar_file_pattern_and_tar_folder_become_shards(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(3):
        _shard(shards / f"train-{i:03d}.tar", 2)
    single = load_dataset(shards / "train-000.tar")
    assert type(single).__name__ == "WebDatasetShards" and len(list(single)) == 2
    pattern = load_dataset(str(shards / "train-{000..002}.tar"))
    assert len(pattern.urls) == 3 and [t for _, t in pattern] == [1] * 6
    folder = load_dataset(shards)
    assert folder.urls == sorted(str(p) for p in shards.glob("*.tar"))
    (shards / "notes.txt").write_text("not a shard")  # a mixed folder is an image folder (with no images here)
    with pytest.raises(ValueError, match="contains no image files"):
        load_dataset(shards)


def test_unsupported_file_kind(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(ValueError, match=r"unsupported kind \(\.bin\); accepted:"):
        load_dataset(tmp_path / "weights.bin")
