"""ImageFolderDataset: listing, labels from sub-folders, decoding, bad files, and the construction errors."""

import builtins
import os

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.data.image_folder import ImageFolderDataset
from contrastkit.data.skip_report import Skipped


def save(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, fmt)


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def class_tree(tmp_path):
    """cat: 2 images (one nested), dog: 1 grayscale; a stray image in root; noise that is not an image."""
    save(tmp_path / "cat" / "a.png", rgb(10, 12))
    save(tmp_path / "cat" / "nested" / "b.JPG", rgb(16, 8, seed=1), "JPEG")
    save(tmp_path / "dog" / "c.png", np.full((7, 9), 77, np.uint8))
    save(tmp_path / "stray.png", rgb(5, 5, seed=2))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "cat" / "._a.png").write_bytes(b"AppleDouble")  # macOS metadata, hidden
    (tmp_path / ".cache").mkdir()
    save(tmp_path / ".cache" / "x.png", rgb(4, 4))
    (tmp_path / "zebra").mkdir()  # no images: not a class
    return tmp_path


def test_classes_targets_and_items(class_tree):
    with pytest.warns(UserWarning, match="zebra"):
        dataset = ImageFolderDataset(class_tree)
    assert dataset.classes == ["cat", "dog"] and dataset.class_to_idx == {"cat": 0, "dog": 1}
    relative = [(os.path.relpath(p, class_tree), t) for p, t in dataset.samples]
    assert relative == [  # files directly in root first, then the folders in sorted order
        ("stray.png", -1),
        (os.path.join("cat", "a.png"), 0),
        (os.path.join("cat", "nested", "b.JPG"), 0),
        (os.path.join("dog", "c.png"), 1),
    ]
    assert len(dataset) == 4 and dataset.targets == [-1, 0, 0, 1]
    image, target = dataset[1]
    assert image.dtype == torch.uint8 and image.shape == (3, 10, 12) and target == 0
    assert torch.equal(image, torch.from_numpy(rgb(10, 12)).permute(2, 0, 1))
    assert dataset[2][0].shape == (3, 16, 8)
    gray, target = dataset[3]
    assert gray.shape == (1, 7, 9) and target == 1 and int(gray.max()) == 77


@pytest.mark.filterwarnings("ignore:.*sub-folders without image files")
def test_channels_option_forces_one_or_three(class_tree):
    three = ImageFolderDataset(class_tree, channels=3)
    assert [three[i][0].shape[0] for i in range(len(three))] == [3, 3, 3, 3]
    one = ImageFolderDataset(class_tree, channels=1)
    assert [one[i][0].shape[0] for i in range(len(one))] == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="channels"):
        ImageFolderDataset(class_tree, channels=2)


def test_flat_folder_is_unlabelled_and_labels_option(tmp_path):
    for i in range(3):
        save(tmp_path / f"{i}.png", rgb(6, 6, seed=i))
    dataset = ImageFolderDataset(tmp_path)
    assert dataset.classes is None and dataset.targets == [-1, -1, -1]
    with pytest.raises(ValueError, match="no class sub-folders"):
        ImageFolderDataset(tmp_path, labels="folders")
    save(tmp_path / "a" / "x.png", rgb(6, 6))
    assert ImageFolderDataset(tmp_path, labels=None).targets == [-1] * 4
    assert ImageFolderDataset(tmp_path, labels="none").classes is None
    assert ImageFolderDataset(tmp_path, extensions=("PNG",)).classes == ["a"]


def test_empty_folder_and_no_images_are_errors_naming_folder_and_extensions(tmp_path):
    with pytest.raises(ValueError) as error:
        ImageFolderDataset(tmp_path)
    assert str(tmp_path) in str(error.value) and ".jpg" in str(error.value) and ".webp" in str(error.value)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.txt").write_text("hello")
    with pytest.raises(ValueError, match="contains no image files"):
        ImageFolderDataset(tmp_path)
    with pytest.raises(ValueError, match=r"\.tif"):
        ImageFolderDataset(tmp_path, extensions=(".tif",))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing")


def test_bad_files_are_skipped_not_raised(tmp_path):
    save(tmp_path / "ok" / "good.png", rgb(8, 8))
    (tmp_path / "ok" / "zero.png").write_bytes(b"")
    (tmp_path / "ok" / "random.jpg").write_bytes(os.urandom(300))
    dataset = ImageFolderDataset(tmp_path)
    items = [dataset[i] for i in range(len(dataset))]
    skipped = [item for item in items if isinstance(item, Skipped)]
    assert len(items) == 3 and len(skipped) == 2
    assert {os.path.basename(s.path): s.reason for s in skipped} == {
        "zero.png": "empty file",
        "random.jpg": "not an image (unrecognised format)",
    }
    os.remove(tmp_path / "ok" / "good.png")  # deleted after listing
    assert dataset[0].reason == "unreadable file"


def test_construction_lists_files_without_opening_them(class_tree, monkeypatch):
    def no_open(*args, **kwargs):
        raise AssertionError("a file was opened in __init__")

    monkeypatch.setattr(builtins, "open", no_open)
    monkeypatch.setattr(Image, "open", no_open)
    with pytest.warns(UserWarning):
        assert len(ImageFolderDataset(class_tree)) == 4


def test_symlink_cycle_terminates(tmp_path):
    save(tmp_path / "cat" / "a.png", rgb(4, 4))
    try:
        os.symlink(tmp_path, tmp_path / "cat" / "loop")
    except OSError:
        pytest.skip("symlinks not supported here")
    assert len(ImageFolderDataset(tmp_path)) == 1
