"""Bad data is skipped, counted and listed, in the main process and through DataLoader worker processes."""

import functools
import io
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from contrastkit.data.decode_image import _decode_plain_jpeg, decode_image
from contrastkit.data.image_folder import ImageFolderDataset
from contrastkit.data.multi_view_dataset import MultiViewDataset, collate_views
from contrastkit.data.skip_report import (
    DECODE_ERRORS,
    Skipped,
    SkipReport,
    check_not_empty,
    load_image_or_skip,
    skipped_from_error,
    split_skipped,
)


def encode(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, fmt)
    return buffer.getvalue()


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_bad_files(folder) -> list[str]:
    """A zero-byte PNG, random bytes named .jpg, and the first half of a real PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.png").write_bytes(b"")
    (folder / "random.jpg").write_bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes())
    png = encode(rgb(40, 30))
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    return [str(folder / n) for n in ("zero.png", "random.jpg", "truncated.png")]


def test_decode_modes_shapes_and_dtype():
    image = decode_image(encode(rgb(12, 7)))
    assert image.shape == (3, 12, 7) and image.dtype == torch.uint8
    assert torch.equal(image, torch.from_numpy(rgb(12, 7)).permute(2, 0, 1))
    gray = np.arange(60, dtype=np.uint8).reshape(6, 10)
    assert decode_image(encode(gray)).shape == (1, 6, 10)
    assert torch.equal(decode_image(encode(gray), channels=3), torch.from_numpy(gray).expand(3, 6, 10))
    assert decode_image(encode(rgb(5, 5)), channels=1).shape == (1, 5, 5)
    rgba = np.concatenate([rgb(4, 4), np.full((4, 4, 1), 128, np.uint8)], axis=-1)
    assert decode_image(encode(rgba)).shape == (3, 4, 4)
    assert decode_image(encode(rgb(9, 8), "JPEG")).shape == (3, 9, 8)


def test_sixteen_bit_gray_is_scaled_not_clipped():
    deep = (np.arange(100, dtype=np.uint16) * 600).reshape(10, 10)
    image = decode_image(encode(deep))
    assert image.shape == (1, 10, 10)
    assert torch.equal(image.flatten(), torch.from_numpy((deep >> 8).astype(np.uint8)).flatten())


def test_bad_files_give_skipped_with_reason(tmp_path):
    zero, random_bytes, truncated = write_bad_files(tmp_path)
    results = [load_image_or_skip(p) for p in (zero, random_bytes, truncated, str(tmp_path / "gone.png"))]
    assert all(isinstance(r, Skipped) for r in results)
    assert [r.reason for r in results] == [
        "empty file",
        "not an image (unrecognised format)",
        "truncated image",
        "unreadable file",
    ]
    assert results[0].path == zero and "FileNotFoundError" in results[3].detail
    assert results[1].detail == "UnidentifiedImageError: cannot identify image file"
    from_bytes = load_image_or_skip(b"not an image", name="shard.tar/key.jpg")
    assert isinstance(from_bytes, Skipped) and from_bytes.path == "shard.tar/key.jpg"
    assert pickle.loads(pickle.dumps(results[2])) == results[2]  # crosses worker process boundaries


def test_skip_report_counts_lists_and_resets():
    report = SkipReport()
    assert report.count == 0 and report.summary() == "No samples skipped."
    report.add(Skipped("a.jpg", "empty file"))
    report.add([Skipped("b.jpg", "truncated image", "OSError: x"), Skipped("c.jpg", "empty file")])
    assert report.count == len(report) == 3
    assert report.by_reason() == {"empty file": 2, "truncated image": 1}
    text = report.summary(max_paths=2, total=300)
    assert "Skipped 3 of 300 (1.00%)" in text and "2 x empty file" in text and "1 x truncated image" in text
    assert "a.jpg" in text and "b.jpg: truncated image (OSError: x)" in text and "c.jpg" not in text
    assert "First 2 of 3" in text
    with pytest.raises(TypeError, match="Skipped"):
        report.add(["not skipped"])
    report.reset()
    assert report.count == 0 and report.items == []


def test_a_file_met_every_epoch_is_counted_and_listed_once():
    report = SkipReport()
    for _epoch in range(3):
        report.add([Skipped("a.jpg", "empty file"), Skipped("b.jpg", "truncated image", "OSError: x")])
    assert report.count == 2 and [s.path for s in report.items] == ["a.jpg", "b.jpg"]
    assert report.summary(total=300).startswith("Skipped 2 of 300")


def test_track_records_skipped_and_hides_empty_batches():
    batches = [
        ([torch.zeros(2, 3)], torch.tensor([0, 1]), [Skipped("x", "empty file")]),
        ([], torch.empty(0, dtype=torch.int64), [Skipped("y", "empty file"), Skipped("z", "empty file")]),
    ]
    report = SkipReport()
    seen = list(report.track(batches))
    assert len(seen) == 1 and seen[0][1].tolist() == [0, 1]
    assert [s.path for s in report.items] == ["x", "y", "z"]


def test_split_skipped_and_check_not_empty():
    kept, skipped = split_skipped([1, Skipped("a", "r"), 2])
    assert kept == [1, 2] and skipped == [Skipped("a", "r")]
    check_not_empty([1])
    with pytest.raises(ValueError, match="has no samples"):
        check_not_empty([], name="my-data")
    with pytest.raises(ValueError, match="no usable samples \\(2 skipped"):
        check_not_empty(iter([Skipped("a", "r"), Skipped("b", "r")]))


class CropViews:
    """Two 8x8 corner crops, deterministic, float."""

    channels = 3

    def __call__(self, image):
        return [image[:, :8, :8].float(), image[:, -8:, -8:].float()]


def test_bad_files_are_counted_through_dataloader_workers(tmp_path):
    """3 bad files among 8: each batch carries its skipped, SkipReport totals 3 with paths and reasons."""
    for i in range(3):
        (tmp_path / "cat").mkdir(exist_ok=True)
        (tmp_path / "cat" / f"{i}.png").write_bytes(encode(rgb(10 + i, 12, seed=i)))
    for i in range(2):
        (tmp_path / "dog").mkdir(exist_ok=True)
        (tmp_path / "dog" / f"{i}.jpg").write_bytes(encode(np.full((9, 11), 50 * i, np.uint8), "JPEG"))
    bad = write_bad_files(tmp_path / "dog" / "bad")
    dataset = ImageFolderDataset(tmp_path)
    assert len(dataset) == 8
    loader = DataLoader(MultiViewDataset(dataset, CropViews()), batch_size=3, num_workers=2, collate_fn=collate_views)
    report = SkipReport()
    targets = []
    for views, batch_targets in report.track(loader):
        assert len(views) == 2 and views[0].shape[1:] == (3, 8, 8) and views[0].shape[0] == len(batch_targets)
        targets += batch_targets.tolist()
    assert sorted(targets) == [0, 0, 0, 1, 1]
    assert report.count == 3 and sorted(s.path for s in report.items) == sorted(bad)
    assert report.by_reason() == {"empty file": 1, "not an image (unrecognised format)": 1, "truncated image": 1}
    summary = report.summary()
    assert all(path in summary for path in bad)


@functools.cache
def photo_jpegs() -> dict[str, bytes]:
    """Real photographs (scikit-learn's two samples) as JPEGs of the kinds the fast path takes."""
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images  # (427, 640, 3) each
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display (neither decoder applies it)
    cases = {
        "500x375 q90 4:2:0": (china[:375, :500], dict(quality=90, subsampling=2)),
        "500x375 q75 4:4:4": (flower[:375, :500], dict(quality=75, subsampling=0)),
        "333x251 q95 4:2:2": (china[50:301, 100:433], dict(quality=95, subsampling=1)),
        "odd 77x61 q50 4:2:0": (flower[7:68, 11:88], dict(quality=50, subsampling=2)),
        "progressive q85": (flower[::2, ::2], dict(quality=85, progressive=True)),
        "optimized q100 4:4:4": (china[100:300, 200:460], dict(quality=100, subsampling=0, optimize=True)),
        "exif orientation 6": (china[:240, :320], dict(quality=90, exif=exif.tobytes())),
        "grayscale q90": (np.asarray(Image.fromarray(china[:375, :500]).convert("L")), dict(quality=90)),
        "grayscale progressive": (np.asarray(Image.fromarray(flower).convert("L")), dict(progressive=True)),
    }
    out = {}
    for name, (pixels, options) in cases.items():
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", **options)
        out[name] = buffer.getvalue()
    return out


def pillow_pixels(data: bytes, mode: str) -> torch.Tensor:
    """The reference: Pillow's own decode, ``(C, H, W)``."""
    with Image.open(io.BytesIO(data)) as image:
        array = np.array(image.convert(mode))
    return torch.from_numpy(array[..., None] if array.ndim == 2 else array).permute(2, 0, 1)


@pytest.mark.parametrize("name", list(photo_jpegs()))
def test_plain_jpegs_take_the_fast_path_with_pillows_exact_pixels(name):
    data = photo_jpegs()[name]
    gray = name.startswith("grayscale")
    expected = pillow_pixels(data, "L" if gray else "RGB")  # (C, H, W)
    with Image.open(io.BytesIO(data)) as image:
        fast = _decode_plain_jpeg(data, image)  # (H, W, C) from torchvision's libjpeg-turbo, not Pillow
    assert (
        fast is not None and fast.dtype == np.uint8 and torch.equal(torch.from_numpy(fast).permute(2, 0, 1), expected)
    )
    assert torch.equal(decode_image(data), expected)
    assert torch.equal(decode_image(data, channels=3), expected.expand(3, -1, -1))
    assert torch.equal(decode_image(data, channels=1), pillow_pixels(data, "L"))  # RGB: Pillow's own luma
    assert decode_image(data).stride()[0] == 1  # the decoder's own memory: channels innermost, no copy into planes
    if name.startswith("exif"):
        assert decode_image(data).shape == (3, 240, 320)  # stored orientation, as Pillow gives it


def test_cmyk_jpegs_and_other_formats_are_decoded_by_pillow():
    cmyk = io.BytesIO()
    Image.fromarray(rgb(48, 40)).convert("CMYK").save(cmyk, "JPEG", quality=90)
    with Image.open(io.BytesIO(cmyk.getvalue())) as image:
        assert image.mode == "CMYK" and _decode_plain_jpeg(cmyk.getvalue(), image) is None
    assert torch.equal(decode_image(cmyk.getvalue()), pillow_pixels(cmyk.getvalue(), "RGB"))
    png = encode(rgb(20, 30))
    with Image.open(io.BytesIO(png)) as image:
        assert _decode_plain_jpeg(png, image) is None


def pillow_outcome(data: bytes, name: str) -> torch.Tensor | Skipped:
    """What Pillow alone makes of ``data`` as RGB: its pixels, or the Skipped its error gives."""
    if not data:
        return Skipped(name, "empty file", "0 bytes")
    try:
        return pillow_pixels(data, "RGB")
    except DECODE_ERRORS as error:
        return skipped_from_error(name, error)


def test_broken_jpegs_are_skipped_exactly_as_pillow_skips_them():
    data = photo_jpegs()["500x375 q90 4:2:0"]
    for cut in (len(data) - 1, len(data) - 2, len(data) // 2, 700):  # the end-of-image marker alone missing, too
        skipped = load_image_or_skip(data[:cut], 3, name="cut.jpg")
        assert isinstance(skipped, Skipped) and skipped.reason == "truncated image", cut
        assert skipped == pillow_outcome(data[:cut], "cut.jpg")
    garbage = b"\xff\xd8\xff" + np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes()
    assert load_image_or_skip(garbage, 3, name="g.jpg") == pillow_outcome(garbage, "g.jpg")
    assert isinstance(pillow_outcome(garbage, "g.jpg"), Skipped)
    assert load_image_or_skip(b"", 3, name="zero.jpg") == Skipped("zero.jpg", "empty file", "0 bytes")


def test_damaged_jpegs_decode_or_skip_as_pillow_does():
    """Bytes changed, inserted, removed, cut: the outcome (pixels or Skipped with its detail) is Pillow's."""
    rng = np.random.default_rng(0)
    china = photo_jpegs()["odd 77x61 q50 4:2:0"]
    gray = photo_jpegs()["grayscale progressive"]
    decoded = skipped = 0
    for trial in range(120):
        data = bytearray(china if trial % 3 else gray)
        at = int(rng.integers(2, len(data)))
        if trial % 4 == 0:
            data[at] = int(rng.integers(0, 256))
        elif trial % 4 == 1:
            data[at:at] = rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes()
        elif trial % 4 == 2:
            del data[at : at + int(rng.integers(1, 100))]
        else:
            del data[at:]
        expected = pillow_outcome(bytes(data), f"{trial}.jpg")
        got = load_image_or_skip(bytes(data), 3, name=f"{trial}.jpg")
        if isinstance(expected, Skipped):
            assert got == expected, trial
            skipped += 1
        else:
            assert isinstance(got, torch.Tensor) and torch.equal(got, expected.expand(3, -1, -1)), trial
            decoded += 1
    assert decoded > 20 and skipped > 20  # both outcomes were exercised
