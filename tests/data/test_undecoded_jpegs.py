"""data.decode=device: JPEG files decoded in one batched call on the training device (here the CPU), every pixel
and every skipped file as the workers' own path gives them."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from contrastkit.data.image_folder import ImageFolderDataset
from contrastkit.data.labelled import FixedSizeImages
from contrastkit.data.undecoded_jpegs import (
    EncodedJpeg,
    UndecodedBatch,
    UndecodedJpegs,
    collate_undecoded,
    decode_undecoded,
)
from contrastkit.train.data_module import collate_images
from tests.data.test_skip_report import photo_jpegs

CPU = torch.device("cpu")


def write_folder(root, damaged: bool = True) -> None:
    """Real photographs as JPEGs of several kinds in two classes, a PNG, a CMYK JPEG, and (``damaged``) a truncated
    JPEG, a JPEG with junk before its end marker (decodes, with libjpeg's warning), a non-image and an empty file."""
    jpegs = photo_jpegs()
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    for i, (name, data) in enumerate(jpegs.items()):
        (root / ("a" if i % 2 else "b") / f"{i:02d} {name}.jpg").write_bytes(data)
    china = np.asarray(Image.open(io.BytesIO(jpegs["500x375 q90 4:2:0"])).convert("RGB"))
    Image.fromarray(china[:200, :300]).save(root / "a" / "png.png")
    Image.fromarray(china).resize((1100, 825), Image.BICUBIC).save(root / "b" / "large.jpg", quality=90)  # >= 4 x 200
    Image.fromarray(china[100:260, 40:300]).convert("CMYK").save(root / "b" / "cmyk.jpg", quality=90)
    if damaged:
        whole = jpegs["333x251 q95 4:2:2"]
        (root / "a" / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
        (root / "b" / "junk before end.jpg").write_bytes(whole[:-2] + b"\x00" * 30 + whole[-2:])
        (root / "a" / "not an image.jpg").write_bytes(b"hello")
        (root / "b" / "empty.jpg").write_bytes(b"")


def workers_batch(folder: ImageFolderDataset, size: int, channels: int):
    """The reference: the whole folder as one batch through the workers' path (decode + resize per item), with
    the large JPEGs decoded at a reduced scale, as training sets it."""
    folder.min_side = size
    items = FixedSizeImages(folder, size, channels)
    return collate_images([items[i] for i in range(len(items))])


def device_batch(folder: ImageFolderDataset, size: int, channels: int):
    items = UndecodedJpegs(folder, size, channels)
    batch = collate_undecoded([items[i] for i in range(len(items))])
    return batch, decode_undecoded(batch, CPU, size, channels)


@pytest.mark.parametrize("channels", [3, 1])
def test_the_device_path_gives_the_workers_pixels_and_skips(tmp_path, channels):
    write_folder(tmp_path)
    folder = ImageFolderDataset(tmp_path, channels=channels)
    expected_images, expected_targets, expected_skipped = workers_batch(folder, 200, channels)
    batch, (images, targets, skipped) = device_batch(folder, 200, channels)
    assert images.shape == expected_images.shape == (len(folder) - 3, channels, 200, 200)  # 3 unreadable ones
    assert torch.equal(images, expected_images) and torch.equal(targets, expected_targets)
    assert sorted(skipped) == sorted(expected_skipped)  # the same files, reasons and details
    assert {path.rsplit("/", 1)[-1] for path, _, _ in skipped} == {"truncated.jpg", "not an image.jpg", "empty.jpg"}
    encoded = {name.rsplit("/", 1)[-1] for name in batch.names}
    assert "png.png" not in encoded and "cmyk.jpg" not in encoded  # Pillow's: decoded by the workers
    assert "large.jpg" not in encoded  # 1100 x 825 for 200 px: decoded at 1/2 scale by the workers
    if channels == 3:  # every plain JPEG, grey ones read as RGB; the damaged ones too (the device refuses one)
        assert len(encoded) == len(photo_jpegs()) + 2 and {"truncated.jpg", "junk before end.jpg"} <= encoded
    else:  # a grey run: RGB JPEGs take Pillow's luma in the workers; grey JPEGs decode on the device
        grey = {f"{i:02d} {name}.jpg" for i, name in enumerate(photo_jpegs()) if name.startswith("grayscale")}
        assert encoded == grey and len(grey) == 2


def test_a_batch_the_device_takes_whole_equals_one_file_at_a_time(tmp_path):
    write_folder(tmp_path, damaged=False)  # no file fails the batched call: one call decodes them all
    folder = ImageFolderDataset(tmp_path, channels=3)
    expected, _, _ = workers_batch(folder, 200, 3)
    _, (images, _, skipped) = device_batch(folder, 200, 3)
    assert skipped == [] and torch.equal(images, expected)


def test_through_dataloader_workers_in_the_samplers_order(tmp_path):
    write_folder(tmp_path)
    folder = ImageFolderDataset(tmp_path, channels=3)
    folder.min_side = 150
    loader = DataLoader(UndecodedJpegs(folder, 150, 3), batch_size=5, num_workers=2, collate_fn=collate_undecoded)
    reference = DataLoader(FixedSizeImages(folder, 150, 3), batch_size=5, num_workers=0, collate_fn=collate_images)
    seen = 0
    for batch, (expected, expected_targets, expected_skipped) in zip(loader, reference, strict=True):
        assert isinstance(batch, UndecodedBatch)
        images, targets, skipped = decode_undecoded(batch, CPU, 150, 3)
        assert torch.equal(images, expected) and torch.equal(targets, expected_targets)
        assert sorted(skipped) == sorted(expected_skipped)
        seen += len(skipped)
    assert seen == 3


def test_an_item_is_the_files_bytes_or_the_workers_image():
    class Listed:  # any data set that lists (path, target) samples
        def __init__(self, samples):
            self.samples = samples

    data = photo_jpegs()["odd 77x61 q50 4:2:0"]
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
        f.write(data)
        f.flush()
        item = UndecodedJpegs(Listed([(f.name, 4)]), 16, 3)[0]
        assert isinstance(item, EncodedJpeg) and item.target == 4 and item.path == f.name
        assert bytes(item.data.numpy()) == data  # the whole file, untouched
    with pytest.raises(TypeError, match="lists no files"):
        UndecodedJpegs(object(), 16, 3)


def test_a_batch_of_only_unreadable_files_is_empty_with_its_skips(tmp_path):
    (tmp_path / "x.jpg").write_bytes(photo_jpegs()["500x375 q90 4:2:0"][:500])
    (tmp_path / "y.jpg").write_bytes(b"")
    folder = ImageFolderDataset(tmp_path, channels=3)
    _, (images, targets, skipped) = device_batch(folder, 24, 3)
    assert images.shape == (0, 3, 24, 24) and images.dtype == torch.uint8 and targets.shape == (0,)
    assert len(skipped) == 2
