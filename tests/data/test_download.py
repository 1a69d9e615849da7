"""resolve_archive / download_file: search order, MD5-checked atomic downloads, and the not-found messages."""

import hashlib
import io

import pytest

from contrastkit.data.download import DownloadError, cache_dir, data_root, download_file, resolve_archive

PAYLOAD = b"contrastkit test archive\n" * 100
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def _isolated_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTRASTKIT_DATA", str(tmp_path / "data-root"))


@pytest.fixture
def source(tmp_path):
    """A local file served through a file:// URL."""
    path = tmp_path / "server" / "archive.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path.as_uri()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_data_root_argument_then_env(tmp_path, monkeypatch):
    assert data_root(tmp_path / "x") == tmp_path / "x"
    assert cache_dir("cifar10") == tmp_path / "data-root" / "cifar10"
    monkeypatch.delenv("CONTRASTKIT_DATA")
    assert str(data_root()).endswith(".cache/contrastkit")


def test_download_file_via_file_url(tmp_path, source):
    dest = tmp_path / "cache" / "archive.bin"
    assert download_file(source, dest, PAYLOAD_MD5) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == ["archive.bin"]  # no temporary file left behind


def test_checksum_mismatch_removes_the_partial_file(tmp_path, source):
    dest = tmp_path / "cache" / "archive.bin"
    with pytest.raises(DownloadError) as info:
        download_file(source, dest, "0" * 32)
    message = str(info.value)
    assert source in message and "checksum mismatch" in message
    assert f"expected md5 {'0' * 32}, got {PAYLOAD_MD5} ({len(PAYLOAD)} bytes)" in message
    assert _leftovers(dest.parent) == []  # not a valid cache entry, and no .part file


class _Broken(io.BytesIO):
    """A response that fails half-way."""

    def read(self, size=-1):
        if self.tell() > 0:
            raise ConnectionResetError("connection reset by peer")
        return super().read(10)


def test_interrupted_download_leaves_nothing_and_next_url_is_tried(tmp_path):
    calls = []

    def opener(url):
        calls.append(url)
        return _Broken(PAYLOAD) if "first" in url else io.BytesIO(PAYLOAD)

    cache = tmp_path / "data-root" / "toy"
    with pytest.raises(ConnectionResetError):
        download_file("https://first.example/a.bin", cache / "a.bin", PAYLOAD_MD5, opener)
    assert _leftovers(cache) == []
    urls = ["https://first.example/a.bin", "https://second.example/a.bin"]
    path = resolve_archive("toy", "a.bin", PAYLOAD_MD5, urls, download=True, opener=opener)
    assert path == cache / "a.bin" and path.read_bytes() == PAYLOAD
    assert calls == ["https://first.example/a.bin", *urls]
    assert _leftovers(cache) == ["a.bin"]


def test_every_url_failing_names_each_error(tmp_path, source):
    missing = (tmp_path / "server" / "nope.bin").as_uri()
    with pytest.raises(DownloadError) as info:
        resolve_archive("toy", "a.bin", "f" * 32, [source, missing], download=True)
    message = str(info.value)
    assert "toy: 'a.bin' not found" in message
    assert f"{source}: checksum mismatch" in message
    assert f"{missing}: URLError" in message
    assert _leftovers(tmp_path / "data-root" / "toy") == []


def test_search_order_system_then_cache_then_root(tmp_path):
    system, root = tmp_path / "system", tmp_path / "root"
    for folder in (system, root / "toy", root):
        folder.mkdir(parents=True, exist_ok=True)
    (root / "a.bin").write_bytes(b"in root")
    found = resolve_archive("toy", "a.bin", None, [], root, system_dirs=[system])
    assert found == root / "a.bin"
    (root / "toy" / "a.bin").write_bytes(b"in cache")
    assert resolve_archive("toy", "a.bin", None, [], root, system_dirs=[system]) == root / "toy" / "a.bin"
    (system / "a").write_bytes(b"uncompressed, in system")
    found = resolve_archive("toy", "a.bin", None, [], root, system_dirs=[system], also=["a"])
    assert found == system / "a"


def test_present_file_is_not_checksummed_unless_asked(tmp_path):
    cache = tmp_path / "data-root" / "toy"
    cache.mkdir(parents=True)
    (cache / "a.bin").write_bytes(b"placed by hand, e.g. recompressed")
    assert resolve_archive("toy", "a.bin", PAYLOAD_MD5, []) == cache / "a.bin"
    with pytest.raises(ValueError, match=rf"a\.bin: checksum mismatch: expected md5 {PAYLOAD_MD5}"):
        resolve_archive("toy", "a.bin", PAYLOAD_MD5, [], verify_existing=True)


def test_not_found_names_every_place_and_how_to_fix(tmp_path):
    system = tmp_path / "usr-share"
    with pytest.raises(FileNotFoundError) as info:
        resolve_archive(
            "toy",
            "a.bin.gz",
            None,
            ["https://example.org/a.bin.gz"],
            system_dirs=[system],
            also=["a.bin"],
            hint="sudo apt-get install toy-data",
        )
    message = str(info.value)
    assert "toy: 'a.bin.gz' (or 'a.bin') not found" in message
    assert f"1. {system} (system-wide copy; sudo apt-get install toy-data)" in message
    assert f"2. {tmp_path / 'data-root' / 'toy'} (cache: the root argument, else $CONTRASTKIT_DATA" in message
    assert "3. download: not tried; pass download=True to download it from https://example.org/a.bin.gz" in message
    assert not (tmp_path / "data-root").exists()  # looking up creates nothing
