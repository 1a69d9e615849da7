"""ImageTextDataset: CSV / JSONL listings, path resolution, and errors that name the file, line and column."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.data.image_text_pairs import ImageTextDataset
from contrastkit.data.skip_report import Skipped


@pytest.fixture
def images(tmp_path):
    """imgs/a.png (RGB 6x5), imgs/b.jpg (RGB 8x8), imgs/g.png (grayscale 4x7), imgs/bad.jpg (not an image)."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / "b.jpg")
    Image.fromarray(np.zeros((4, 7), np.uint8)).save(folder / "g.png")
    (folder / "bad.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    return tmp_path


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_pairs_and_relative_paths(images):
    listing = write(
        images / "pairs.csv", 'image,caption,source\nimgs/a.png,"a red, square thing",web\nimgs/g.png,gray,x\n'
    )
    dataset = ImageTextDataset(listing)
    assert len(dataset) == 2 and dataset.classes is None
    image, caption = dataset[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 6, 5) and caption == "a red, square thing"
    assert dataset[1][0].shape == (1, 4, 7)
    assert ImageTextDataset(listing, channels=3)[1][0].shape == (3, 4, 7)
    elsewhere = images / "lists"
    elsewhere.mkdir()
    moved = write(elsewhere / "pairs.tsv", "file\ttext\na.png\tfirst\n")
    dataset = ImageTextDataset(moved, image_column="file", caption_column="text", root=images / "imgs")
    assert dataset.samples == [(os.path.join(images / "imgs", "a.png"), "first")]


def test_jsonl_pairs(images):
    lines = [{"image": "imgs/b.jpg", "caption": "b"}, {"image": str(images / "imgs" / "a.png"), "caption": "abs"}]
    listing = write(images / "pairs.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    dataset = ImageTextDataset(listing)
    assert [c for _, c in dataset.samples] == ["b", "abs"]
    assert dataset[0][0].shape == (3, 8, 8) and dataset[1][0].shape == (3, 6, 5)


def test_missing_column_names_file_column_and_columns_found(images):
    listing = write(images / "pairs.csv", "image,text\nimgs/a.png,hello\n")
    with pytest.raises(ValueError) as error:
        ImageTextDataset(listing)
    message = str(error.value)
    assert str(listing) in message and "'caption'" in message and "['image', 'text']" in message
    jsonl = write(images / "pairs.jsonl", '{"image": "imgs/a.png", "caption": "x"}\n{"image": "imgs/a.png"}\n')
    with pytest.raises(ValueError, match=r"pairs\.jsonl, line 2: missing column 'caption'; keys found: \['image'\]"):
        ImageTextDataset(jsonl)


def test_missing_image_files_are_collected_in_one_error(images):
    rows = ["imgs/a.png,ok"] + [f"imgs/missing{i}.png,m{i}" for i in range(12)]
    listing = write(images / "pairs.csv", "image,caption\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError) as error:
        ImageTextDataset(listing)
    message = str(error.value)
    assert str(listing) in message and "12 image file(s) in column 'image' do not exist" in message
    assert "line 3: " in message and "missing0.png" in message  # header is line 1, first row line 2
    assert "missing9.png" in message and "missing10.png" not in message and "and 2 more" in message
    unchecked = ImageTextDataset(listing, check_files=False)  # then a missing file is skipped when loaded
    assert unchecked[1].reason == "unreadable file" and unchecked[1].path.endswith("missing0.png")


def test_empty_caption_and_bad_rows_name_the_line(images):
    csv_text = 'image,caption\nimgs/a.png,"two\nlines"\nimgs/a.png,ok\nimgs/a.png,  \n'
    with pytest.raises(ValueError, match=r"pairs\.csv, line 5, column 'caption': empty caption"):
        ImageTextDataset(write(images / "pairs.csv", csv_text))
    with pytest.raises(ValueError, match=r"line 3: 3 fields where the header has 2"):
        ImageTextDataset(write(images / "pairs.csv", "image,caption\nimgs/a.png,ok\nimgs/a.png,a dog, running\n"))
    with pytest.raises(ValueError, match=r"line 2, column 'image': empty image path"):
        ImageTextDataset(write(images / "pairs.csv", "image,caption\n,orphan caption\n"))


def test_malformed_jsonl_line(images):
    text = '{"image": "imgs/a.png", "caption": "ok"}\n\n{"image": "imgs/a.png", "caption": \n'
    with pytest.raises(ValueError, match=r"pairs\.jsonl, line 3: malformed JSON"):
        ImageTextDataset(write(images / "pairs.jsonl", text))
    with pytest.raises(ValueError, match=r"line 1: expected a JSON object, got list"):
        ImageTextDataset(write(images / "pairs.jsonl", '["imgs/a.png", "x"]\n'))
    with pytest.raises(ValueError, match=r"line 1, column 'caption': expected a string, got int"):
        ImageTextDataset(write(images / "pairs.jsonl", '{"image": "imgs/a.png", "caption": 3}\n'))
    text = '{"image": "imgs/a.png", "caption": "line\u2028separator"}\n'  # not a line break in JSON lines
    assert ImageTextDataset(write(images / "pairs.jsonl", text))[0][1] == "line\u2028separator"


def test_empty_listing_encoding_and_suffix_errors(images):
    with pytest.raises(ValueError, match="is empty: expected a header"):
        ImageTextDataset(write(images / "pairs.csv", ""))
    with pytest.raises(ValueError, match="lists no image-caption pairs"):
        ImageTextDataset(write(images / "pairs.csv", "image,caption\n"))
    (images / "latin.csv").write_bytes(b"image,caption\nimgs/a.png,caf\xe9\n")
    with pytest.raises(ValueError, match=r"latin\.csv, line 2: not valid UTF-8"):
        ImageTextDataset(images / "latin.csv")
    with pytest.raises(ValueError, match=r"expected a \.csv"):
        ImageTextDataset(write(images / "pairs.txt", "x"))


def test_corrupt_image_is_skipped_when_loaded(images):
    dataset = ImageTextDataset(write(images / "pairs.csv", "image,caption\nimgs/bad.jpg,broken\nimgs/a.png,fine\n"))
    assert len(dataset) == 2
    item = dataset[0]
    assert isinstance(item, Skipped) and item.path.endswith("bad.jpg") and item.reason.startswith("not an image")
    assert dataset[1][1] == "fine"
