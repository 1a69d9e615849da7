"""Find a data set file on this machine, or download it with an MD5 check: the resolve-or-download path of built-ins.

Where a file is looked for, in order:

1. system folders given by the data set (e.g. ``/usr/share/datasets/fashion-mnist`` from a Debian package);
2. the cache folder ``<data root>/<name>``, where the data root is the ``root`` argument, else ``$CONTRASTKIT_DATA``,
   else ``~/.cache/contrastkit``; when ``root`` is given, ``root`` itself is also searched (files put there by hand);
3. with ``download=True``: each URL in turn, into the cache folder.

MD5 policy: a download is verified before it becomes a cache entry (streamed to a temporary file in the cache
folder, checked, then renamed; on a mismatch or a network error the temporary file is removed). A file that is
already present is not checksummed by default (``verify_existing=True`` does it): the parsers validate structure
and sizes anyway, hand-placed copies are often re-compressed (the Debian Fashion-MNIST ``.gz`` files decompress to
the upstream bytes but have other MD5s than upstream's ``.gz``), and hashing gigabytes on every load is slow.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

ENV_VAR = "CONTRASTKIT_DATA"
DEFAULT_ROOT = "~/.cache/contrastkit"
CHUNK = 1 << 20  # bytes per read while downloading and hashing
TIMEOUT_S = 60

# opener(url) returns a readable binary file object usable as a context manager (as urllib.request.urlopen does)
Opener = Callable[[str], Any]


class DownloadError(OSError):
    """No URL gave a file with the expected checksum; nothing was left in the cache."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds the built-in data sets' caches: ``root``, else ``$CONTRASTKIT_DATA``, else the default."""
    if root is not None:
        return Path(root).expanduser()
    return Path(os.environ.get(ENV_VAR) or DEFAULT_ROOT).expanduser()


def cache_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """The cache folder of data set ``name``: ``<data root>/<name>``."""
    return data_root(root) / name


def file_md5(path: str | os.PathLike) -> str:
    """The MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _default_opener(url: str) -> IO[bytes]:
    return urllib.request.urlopen(url, timeout=TIMEOUT_S)


def download_file(url: str, dest: Path, md5: str | None, opener: Opener | None = None) -> Path:
    """Download ``url`` to ``dest``: to a temporary file next to it, MD5-checked, then renamed into place.

    Args:
        url: the source; ``file://`` URLs work with the default opener.
        dest: the final path; its folder is created.
        md5: the expected hex digest, or None to skip the check.
        opener: ``opener(url) -> binary file object`` (default: ``urllib.request.urlopen`` with a timeout).

    Returns:
        ``dest``.

    Raises:
        DownloadError: checksum mismatch (the temporary file is removed; ``dest`` is not touched).
        OSError: a network or file error (the temporary file is removed).
    """
    opener = opener or _default_opener
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest, size = hashlib.md5(usedforsecurity=False), 0
        with os.fdopen(fd, "wb") as out, opener(url) as response:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        got = digest.hexdigest()
        if md5 is not None and got != md5:
            raise DownloadError(
                f"{url}: checksum mismatch: expected md5 {md5}, got {got} ({size} bytes); the download was discarded"
            )
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dest


def _places(
    cache: Path, system_dirs: Sequence[Path], hint: str | None, root_given: bool
) -> tuple[list[Path], list[str]]:
    """The folders searched, in order, and one numbered description line per place."""
    folders = [*system_dirs, cache]
    lines = [f"{d} (system-wide copy{'; ' + hint if hint else ''})" for d in system_dirs]
    if root_given:
        folders.append(cache.parent)
        lines.append(f"{cache} and {cache.parent} (the root argument)")
    else:
        lines.append(f"{cache} (cache: the root argument, else ${ENV_VAR}, else {DEFAULT_ROOT})")
    return folders, lines


def resolve_archive(
    name: str,
    filename: str,
    md5: str | None,
    urls: Sequence[str],
    root: str | os.PathLike | None = None,
    download: bool = False,
    opener: Opener | None = None,
    *,
    system_dirs: Sequence[str | os.PathLike] = (),
    also: Sequence[str] = (),
    hint: str | None = None,
    verify_existing: bool = False,
) -> Path:
    """The path of data set file ``filename``: found locally, else downloaded into the cache (see the module doc).

    Args:
        name: the data set name; the cache folder is ``<data root>/<name>``.
        filename: the file name, as downloaded.
        md5: its expected MD5 hex digest (checked after a download; on present files only with ``verify_existing``).
        urls: where to download it from, tried in order.
        root: the data root (default ``$CONTRASTKIT_DATA`` or ``~/.cache/contrastkit``).
        download: whether to download when the file is not found.
        opener: ``opener(url) -> binary file object``, for tests and proxies (default ``urllib.request.urlopen``).
        system_dirs: read-only folders searched first.
        also: other file names accepted when present (e.g. the uncompressed form of a ``.gz``).
        hint: how to get a system-wide copy, shown in the not-found message.
        verify_existing: also check the MD5 of a file that is already present.

    Raises:
        FileNotFoundError: not found and ``download=False``; the message names every place looked in.
        DownloadError: not found and every URL failed; the message gives each URL's error.
        ValueError: ``verify_existing`` and a present file has the wrong MD5.
    """
    cache = cache_dir(name, root)
    folders, lines = _places(cache, [Path(d) for d in system_dirs], hint, root is not None)
    for folder in folders:
        for candidate in (filename, *also):
            path = folder / candidate
            if path.is_file():
                if verify_existing and candidate == filename and md5 is not None and (got := file_md5(path)) != md5:
                    raise ValueError(f"{path}: checksum mismatch: expected md5 {md5}, got {got}; delete it to download")
                return path

    names = repr(filename) + (f" (or {', '.join(repr(a) for a in also)})" if also else "")
    if not download:
        sources = " or ".join(urls) if urls else "(no download URL known)"
        lines.append(f"download: not tried; pass download=True to download it from {sources} into {cache}")
        raise FileNotFoundError(f"{name}: {names} not found. Looked in:\n{_numbered(lines)}")
    errors: list[str] = []
    for url in urls:
        try:
            return download_file(url, cache / filename, md5, opener)
        except (OSError, ValueError, http.client.HTTPException) as error:
            errors.append(str(error) if str(error).startswith(url) else f"{url}: {type(error).__name__}: {error}")
    lines.append("download into " + str(cache) + " failed:" + "".join(f"\n       {e}" for e in errors))
    raise DownloadError(f"{name}: {names} not found. Looked in:\n{_numbered(lines)}")


def _numbered(lines: list[str]) -> str:
    return "\n".join(f"  {i}. {line}" for i, line in enumerate(lines, 1))
