"""Built-in data sets on small real files: digits, Fashion-MNIST (IDX), CIFAR-10 (pickle archive), STL-10 (binary)."""

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from contrastkit.data import cifar, fashion_mnist, stl10
from contrastkit.data.fashion_mnist import read_idx
from contrastkit.data.load_dataset import load_dataset

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test reads the user's cache or this machine's Debian copy unless it says so."""
    monkeypatch.setenv("CONTRASTKIT_DATA", str(tmp_path / "data-root"))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "no-system-copy")


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


# ---------------------------------------------------------------- digits


def test_digits_splits():
    train, test, full = (load_dataset("digits", split=s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(full)) == (1438, 359, 1797)
    image, target = train[0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.uint8 and isinstance(target, int)
    assert full.images.max() == 255 and full.classes == [str(d) for d in range(10)]
    share = test.targets.bincount(minlength=10) / full.targets.bincount(minlength=10)
    assert torch.allclose(share, torch.full((10,), 0.2), atol=0.01)  # stratified
    again = load_dataset("digits", split="test")
    assert torch.equal(again.images, test.images)  # deterministic
    pairs = {(bytes(i.numpy()), int(t)) for i, t in zip(full.images, full.targets, strict=True)}
    assert {(bytes(i.numpy()), int(t)) for i, t in zip(test.images, test.targets, strict=True)} <= pairs


# ---------------------------------------------------------------- IDX / Fashion-MNIST


def _idx(array, code=0x08):
    dtype = {0x08: ">u1", 0x0C: ">i4"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def _write(path, data, gz=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_idx_parses_gzipped_and_plain(tmp_path):
    images = np.arange(5 * 3 * 2, dtype=np.uint8).reshape(5, 3, 2)
    assert np.array_equal(read_idx(_write(tmp_path / "x-idx3-ubyte.gz", _idx(images)), ndim=3), images)
    assert np.array_equal(read_idx(_write(tmp_path / "x-idx3-ubyte", _idx(images), gz=False)), images)
    ints = np.array([[-1, 70000], [3, 4]], dtype=np.int32)
    parsed = read_idx(_write(tmp_path / "i.idx", _idx(ints, 0x0C)))
    assert parsed.dtype == np.int32 and np.array_equal(parsed, ints)


@pytest.mark.parametrize(
    ("data", "gz", "problem"),
    [
        (
            _idx(np.zeros((60000, 28, 28), np.uint8))[:1000],
            True,
            "truncated: expected 47040016 bytes of data, got 1000",
        ),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 12, False, "corrupt or truncated gzip data"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, True, "bad magic number 0x89504e47"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), True, "unknown IDX data type code 0x07"),
        (_idx(np.zeros(4, np.uint8)), True, "expected 3 dimension(s), the header says 1"),
        (_idx(np.zeros((1, 2, 2), np.uint8)) + b"xx", True, "2 unexpected bytes after the data"),
        (b"\0\0\x08", True, "truncated: 3 bytes"),
    ],
)
def test_idx_errors_name_file_and_problem(tmp_path, data, gz, problem):
    path = _write(tmp_path / "train-images-idx3-ubyte.gz", data, gz)
    with pytest.raises(ValueError) as info:
        read_idx(path, ndim=3)
    assert str(info.value).startswith("train-images-idx3-ubyte.gz: ")
    assert problem in str(info.value)


def test_idx_gzip_truncated_mid_stream(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx(np.arange(4000, dtype=np.uint8).reshape(10, 20, 20)))[:-30])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: corrupt or truncated gzip data"):
        read_idx(path)


def _fmnist_files(folder, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10
        files[prefix] = images, labels
        _write(folder / f"{prefix}-images-idx3-ubyte.gz", _idx(images))
        _write(folder / f"{prefix}-labels-idx1-ubyte.gz", _idx(labels))
    return files


def test_fashion_mnist_from_root(tmp_path):
    files = _fmnist_files(tmp_path / "mine")
    train = load_dataset("fashion-mnist", root=tmp_path / "mine")
    test = load_dataset("fashion-mnist", split="test", root=tmp_path / "mine")
    assert (len(train), len(test)) == (6, 4)
    assert train.images.shape == (6, 1, 28, 28) and train.images.dtype == torch.uint8
    assert torch.equal(test.images[:, 0], torch.from_numpy(files["t10k"][0]))
    assert train.targets.tolist() == [0, 1, 2, 3, 4, 5]
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"


def test_fashion_mnist_mismatched_counts(tmp_path):
    _fmnist_files(tmp_path / "r" / "fashion-mnist")
    _write(tmp_path / "r" / "fashion-mnist" / "train-labels-idx1-ubyte.gz", _idx(np.zeros(5, np.uint8)))
    with pytest.raises(
        ValueError, match=r"train-images-idx3-ubyte\.gz has 6 images but train-labels-idx1-ubyte\.gz has 5"
    ):
        load_dataset("fashion-mnist", root=tmp_path / "r")


def test_fashion_mnist_not_found_names_three_places(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion-mnist")
    message = str(info.value)
    assert "'train-images-idx3-ubyte.gz' (or 'train-images-idx3-ubyte') not found" in message
    assert f"1. {tmp_path / 'no-system-copy'}" in message
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert f"2. {tmp_path / 'data-root' / 'fashion-mnist'}" in message
    assert "3. download: not tried; pass download=True" in message and "zalandoresearch" in message


def test_fashion_mnist_download_into_cache(tmp_path, monkeypatch):
    server = tmp_path / "server"
    _fmnist_files(server)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in server.iterdir()}
    monkeypatch.setattr(fashion_mnist, "MIRRORS", [server.as_uri() + "/"])
    monkeypatch.setattr(fashion_mnist, "MD5", md5)
    assert len(load_dataset("fashion-mnist", split="test", download=True)) == 4
    cache = tmp_path / "data-root" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    monkeypatch.setattr(fashion_mnist, "MIRRORS", ["file:///nowhere/"])
    assert len(load_dataset("fashion-mnist", split="test")) == 4  # from the cache now


@pytest.mark.skipif(
    not (DEBIAN_FMNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason="data not available: Debian package dataset-fashion-mnist is not installed (apt-get install it to run)",
)
def test_fashion_mnist_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", DEBIAN_FMNIST)
    train = load_dataset("fashion-mnist", split="train", root=tmp_path / "empty")
    test = load_dataset("fashion-mnist", split="test", root=tmp_path / "empty")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.targets.bincount().tolist() == [6000] * 10 and test.targets.bincount().tolist() == [1000] * 10


# ---------------------------------------------------------------- CIFAR-10


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` opcodes, as cPickle wrote the original CIFAR batches (protocol 2)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj):
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n))
        self.write(obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _py2_pickle(obj):
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # the original files name numpy 1's module path
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n_reconstruct\n", b"cnumpy.core.multiarray\n_reconstruct\n")


CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _cifar_archive(path, per_batch=2, n_test=3, replace=None):
    rng = np.random.default_rng(1)
    rows = {}
    with tarfile.open(path, "w:gz") as tar:
        meta = {b"num_cases_per_batch": per_batch, b"label_names": CIFAR_NAMES, b"num_vis": 3072}
        _add(tar, "cifar-10-batches-py/batches.meta", _py2_pickle(meta))
        for i, batch in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
            n = n_test if batch == "test_batch" else per_batch
            rows[batch] = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            entry = {
                b"batch_label": f"batch {i}".encode(),
                b"labels": [(i + j) % 10 for j in range(n)],
                b"data": rows[batch],
                b"filenames": [f"img_{i}_{j}.png".encode() for j in range(n)],
            }
            _add(tar, f"cifar-10-batches-py/{batch}", (replace or {}).get(batch, _py2_pickle(entry)))
    return rows


def test_cifar10_archive(tmp_path):
    cache = tmp_path / "data-root" / "cifar10"
    cache.mkdir(parents=True)
    rows = _cifar_archive(cache / "cifar-10-python.tar.gz")
    train, test = load_dataset("cifar10"), load_dataset("cifar10", split="test")
    assert (len(train), len(test)) == (10, 3)
    image, target = train[3]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8 and target == 2  # batch 2, second image
    row = rows["data_batch_2"][1]  # 1024 red, 1024 green, 1024 blue, each row-major 32x32
    assert image[1, 5, 7] == row[1024 + 5 * 32 + 7] and image[2, 31, 0] == row[2048 + 31 * 32]
    assert test.targets.tolist() == [5, 6, 7]
    assert train.classes == [n.decode() for n in CIFAR_NAMES]


def test_py2_fixture_matches_original_format():
    data = _py2_pickle({b"data": np.zeros((1, 3072), np.uint8)})
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in data and b"_codecs" not in data
    assert cifar.safe_load(data, "x")["data"].shape == (1, 3072)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        (pickle.dumps({"data": _Evil()}, protocol=2), "refused to load global posix.system"),
        (pickle.dumps({b"data": b"x"}, protocol=2), "refused to load global _codecs.encode"),  # Python 3 bytes
        (_py2_pickle({b"data": [1, 2], b"labels": [0]}), "'data' must be a uint8 (N, 3072) array, got list"),
    ],
)
def test_cifar10_refuses_code_and_bad_batches(tmp_path, payload, refused):
    root = tmp_path / "r"
    root.mkdir()
    _cifar_archive(root / "cifar-10-python.tar.gz", replace={"data_batch_3": payload})
    with pytest.raises(ValueError) as info:
        load_dataset("cifar10", root=root)
    assert str(info.value).startswith("cifar-10-python.tar.gz:cifar-10-batches-py/data_batch_3: ")
    assert refused in str(info.value)


def test_cifar10_truncated_archive(tmp_path):
    _cifar_archive(tmp_path / "full.tar.gz")
    (tmp_path / "cifar-10-python.tar.gz").write_bytes((tmp_path / "full.tar.gz").read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz: corrupt or truncated archive"):
        load_dataset("cifar10", root=tmp_path)


# ---------------------------------------------------------------- STL-10


def _stl10_archive(path, counts=(("train", 3), ("test", 2), ("unlabeled", 2))):
    rng = np.random.default_rng(2)
    images = {}
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "stl10_binary/class_names.txt", "\n".join(stl10.CLASSES).encode() + b"\n")
        for split, n in counts:
            chw = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
            images[split] = chw
            _add(tar, f"stl10_binary/{split}_X.bin", chw.transpose(0, 1, 3, 2).tobytes())  # planes column-major
            if split != "unlabeled":
                _add(tar, f"stl10_binary/{split}_y.bin", bytes([(k % 10) + 1 for k in range(n)]))
    return images


def test_stl10_splits_extracted_once(tmp_path):
    archive = tmp_path / "data-root" / "stl10" / "stl10_binary.tar.gz"
    archive.parent.mkdir(parents=True)
    images = _stl10_archive(archive)
    train = load_dataset("stl10")
    assert len(train) == 3 and train.targets.tolist() == [0, 1, 2] and train.classes == stl10.CLASSES
    image, target = train[1]
    assert image.shape == (3, 96, 96) and image.dtype == torch.uint8 and image.is_contiguous() and target == 1
    assert torch.equal(image, torch.from_numpy(images["train"][1]))
    extracted = sorted(p.name for p in archive.with_name("stl10_binary").iterdir())
    assert extracted == ["class_names.txt", "train_X.bin", "train_y.bin"]  # only what the split needs
    assert torch.equal(load_dataset("stl10", split="test").images, torch.from_numpy(images["test"]))
    unlabeled = load_dataset("stl10", split="unlabeled")
    assert len(unlabeled) == 2 and unlabeled.targets.tolist() == [-1, -1]
    assert torch.equal(unlabeled.images, torch.from_numpy(images["unlabeled"]))
    archive.unlink()  # the extracted files suffice from now on
    assert torch.equal(load_dataset("stl10").images, torch.from_numpy(images["train"]))


def test_stl10_wrong_size_and_missing_member(tmp_path):
    _stl10_archive(tmp_path / "stl10_binary.tar.gz", counts=(("train", 1),))
    with pytest.raises(ValueError, match=r"stl10_binary\.tar\.gz: members missing: stl10_binary/test_X\.bin"):
        load_dataset("stl10", split="test", root=tmp_path)
    extracted = load_dataset("stl10", root=tmp_path).images
    assert extracted.shape == (1, 3, 96, 96)
    bad = tmp_path / "stl10" / "stl10_binary" / "train_X.bin"
    bad.write_bytes(bad.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"train_X\.bin: 27643 bytes is not a whole number of 27648-byte images"):
        load_dataset("stl10", root=tmp_path)
