"""WebDatasetShards: decoding, bad samples, and every sample exactly once across simulated ranks and real workers."""

import io

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader

from contrastkit.data.skip_report import Skipped
from contrastkit.data.webdataset_shards import WebDatasetShards, assign_shards

BAD_ID = 7  # the sample whose image is random bytes


def encode(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def write_shards(folder, n_shards=5, per_shard=4, captions=False):
    """Sample i has class i (so ids are checkable); odd ids are grayscale PNG, even RGB JPEG; BAD_ID is corrupt."""
    rng = np.random.default_rng(0)
    for s in range(n_shards):
        with wds.TarWriter(str(folder / f"shard-{s:03d}.tar")) as sink:
            for j in range(per_shard):
                i = s * per_shard + j
                sample = {"__key__": f"sample{i:04d}", "cls": i}
                if i == BAD_ID:
                    sample["jpg"] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
                elif i % 2:
                    sample["png"] = encode(rng.integers(0, 256, (6, 9), dtype=np.uint8), "PNG")
                else:
                    sample["jpg"] = encode(rng.integers(0, 256, (10, 8, 3), dtype=np.uint8), "JPEG")
                if captions:
                    sample["txt"] = f"caption {i}"
                sink.write(sample)
    return str(folder / f"shard-{{000..{n_shards - 1:03d}}}.tar")


def ids_and_skips(items):
    ids = [target for item in items if not isinstance(item, Skipped) for target in [item[1]]]
    return ids, [item for item in items if isinstance(item, Skipped)]


def test_decodes_images_and_labels_and_skips_corrupt(tmp_path):
    pattern = write_shards(tmp_path)
    dataset = WebDatasetShards(pattern)
    assert len(dataset.urls) == 5 and dataset.urls[0].endswith("shard-000.tar")
    items = list(dataset)
    ids, skipped = ids_and_skips(items)
    assert ids == [i for i in range(20) if i != BAD_ID]
    assert len(skipped) == 1 and skipped[0].path.endswith("shard-001.tar/sample0007.jpg")
    assert skipped[0].reason == "not an image (unrecognised format)"
    color, gray = items[0][0], items[1][0]
    assert color.dtype == torch.uint8 and color.shape == (3, 10, 8) and gray.shape == (1, 6, 9)
    assert next(iter(WebDatasetShards(pattern, channels=3)))[0].shape == (3, 10, 8)
    assert set(ids_and_skips(list(WebDatasetShards(pattern, target_key=None)))[0]) == {-1}


def test_captions(tmp_path):
    dataset = WebDatasetShards(write_shards(tmp_path, n_shards=1, captions=True), caption_key="txt")
    assert [item[1] for item in dataset] == [f"caption {i}" for i in range(4)]


@pytest.mark.parametrize("n_shards", [5, 2])  # 5 >= 4 readers: shards split; 2 < 4 readers: samples strided
def test_two_ranks_two_workers_see_every_sample_once(tmp_path, n_shards):
    pattern = write_shards(tmp_path, n_shards=n_shards)
    ids, skipped = [], []
    for rank in range(2):
        dataset = WebDatasetShards(pattern, rank=rank, world_size=2, shuffle_buffer=3, seed=1)
        loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=list)
        rank_ids, rank_skipped = ids_and_skips([item for batch in loader for item in batch])
        assert rank_ids  # both ranks get work
        ids += rank_ids
        skipped += rank_skipped
    total = n_shards * 4
    assert sorted(ids) == [i for i in range(total) if i != BAD_ID]  # exactly once, none lost
    assert len(skipped) == 1 and skipped[0].path.endswith("sample0007.jpg")


def test_fewer_shards_than_readers_warns_and_strides(tmp_path):
    pattern = write_shards(tmp_path, n_shards=2)
    with pytest.warns(UserWarning, match="2 shards for 4 readers"):
        first = list(WebDatasetShards(pattern, rank=0, world_size=4))
    ids = ids_and_skips(first)[0]
    for rank in range(1, 4):
        ids += ids_and_skips(list(WebDatasetShards(pattern, rank=rank, world_size=4)))[0]
    assert sorted(ids) == [i for i in range(8) if i != BAD_ID]
    assert assign_shards(["a", "b", "c"], 1, 2) == (["b"], False) and assign_shards(["a"], 1, 2) == (["a"], True)


def test_shuffle_is_deterministic_per_epoch(tmp_path):
    pattern = write_shards(tmp_path)
    dataset = WebDatasetShards(pattern, shuffle_buffer=5, seed=3)
    order0 = ids_and_skips(list(dataset))[0]
    assert ids_and_skips(list(dataset))[0] == order0
    dataset.set_epoch(1)
    order1 = ids_and_skips(list(dataset))[0]
    assert order1 != order0 and sorted(order1) == sorted(order0)
    assert ids_and_skips(list(WebDatasetShards(pattern)))[0] == sorted(order0)  # no buffer: file order


def test_truncated_shard_keeps_what_it_can(tmp_path):
    write_shards(tmp_path, n_shards=1)
    data = (tmp_path / "shard-000.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2])
    ids, skipped = ids_and_skips(list(WebDatasetShards(str(tmp_path / "cut.tar"))))
    assert 0 < len(ids) < 4 and ids == list(range(len(ids)))
    assert [(s.path[-7:], s.reason) for s in skipped] == [("cut.tar", "unreadable shard")]  # once per shard


def test_construction_errors(tmp_path):
    write_shards(tmp_path, n_shards=2)
    with pytest.raises(ValueError, match=r"1 of 3 shard files do not exist:\n.*shard-002\.tar"):
        WebDatasetShards(str(tmp_path / "shard-{000..002}.tar"))
    with pytest.raises(ValueError, match="no shards"):
        WebDatasetShards([])
    with pytest.raises(ValueError, match="rank"):
        WebDatasetShards(str(tmp_path / "shard-000.tar"), rank=2, world_size=2)
    listed = WebDatasetShards([tmp_path / "shard-000.tar", str(tmp_path / "shard-{001..001}.tar")])
    assert len(listed.urls) == 2
