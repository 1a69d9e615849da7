"""`contrastkit serve`: the JSON API on an image index and a text index, and its refusals (4xx with a JSON message,
never a traceback; no file outside the image root)."""

from __future__ import annotations

import pytest
import torch

from contrastkit.backbones import save_encoder
from contrastkit.cli.main import main
from tests.index.helpers import random_images, tiny_image_encoder

TEXTS = ["how to sort a list in place", "reading a file line by line", "the weather in spring is mild",
         "a recipe for tomato soup", "merging two dictionaries", "the history of the roman empire",
         "opening a network socket", "training a neural network on images"]  # fmt: skip


@pytest.fixture(scope="module")
def image_index(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-images")
    encoder = tiny_image_encoder(tmp / "enc.safetensors")
    folder = random_images(tmp / "imgs", 20)
    outside = random_images(tmp / "elsewhere", 1, seed=1) / "img00.png"  # outside the root, linked from inside it
    (folder / "zlink.png").symlink_to(outside)
    quiet = ["--num-workers", "0", "--quiet"]
    assert main(["embed", str(encoder), str(folder), "--out", str(tmp / "emb"), *quiet]) == 0
    assert main(["index", "build", str(tmp / "emb"), "--out", str(tmp / "gallery.faiss")]) == 0
    return tmp / "gallery.faiss", folder


@pytest.fixture(scope="module")
def text_index(tmp_path_factory, minilm):
    tmp = tmp_path_factory.mktemp("serve-texts")
    encoder = save_encoder(minilm, tmp / "minilm.safetensors", {"kind": "text", "text_encoder": minilm.text_config})
    (tmp / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    assert main(["embed", str(encoder), str(tmp / "texts.txt"), "--out", str(tmp / "emb"), "--quiet"]) == 0
    assert main(["index", "build", str(tmp / "emb"), "--out", str(tmp / "texts.faiss"), "--kind", "hnsw"]) == 0
    return tmp / "texts.faiss"


def client(index, **kwargs):
    from fastapi.testclient import TestClient

    from contrastkit.index.search_service import SearchService, create_app

    service = SearchService(index, **kwargs)
    return TestClient(create_app(service), raise_server_exceptions=False), service


def test_image_queries_neighbours_and_thumbnails(image_index):
    index, folder = image_index
    api, _ = client(index)
    health = api.get("/health").json()
    assert health["vectors"] == 21 and health["image_queries"] and not health["text_queries"] and health["thumbnails"]
    query = (folder / "img07.png").read_bytes()
    found = api.post("/search?k=3", files={"image": ("q.png", query, "image/png")})
    assert found.status_code == 200
    results = found.json()["results"]
    assert len(results) == 3 and results[0]["id"].endswith("img07.png")
    assert results[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    # the same ranking as the command line's search
    from contrastkit.index.search import search_image

    assert [r["id"] for r in results] == [i for _, i in search_image(index, str(folder / "img07.png"), 3)]
    thumb = api.get(results[0]["thumbnail"])
    assert thumb.status_code == 200 and thumb.content == query
    near = api.get(f"/neighbours/{results[0]['id']}", params={"k": 4}).json()["results"]
    assert len(near) == 4 and all(r["id"] != results[0]["id"] for r in near)  # itself left out
    assert near[0]["id"] == results[1]["id"]


def test_paths_outside_the_root_are_refused(image_index):
    index, folder = image_index
    api, _ = client(index)
    link = str(folder / "zlink.png")
    assert api.get("/thumbnail", params={"path": link}).status_code == 403  # indexed, but resolves outside
    for path in (
        "/etc/passwd",
        str(folder / ".." / "elsewhere" / "img00.png"),
        str(folder / "../../etc/passwd"),
        "img01.png",
    ):
        response = api.get("/thumbnail", params={"path": path})
        assert response.status_code in (403, 404) and "error" in response.json()
    assert api.get(f"/neighbours/{folder / '..' / 'elsewhere' / 'img00.png'}").status_code == 404


def test_bad_requests_get_4xx_with_a_json_message(image_index):
    index, folder = image_index
    api, service = client(index)
    cases = [
        api.get("/search", params={"text": "a shoe"}),  # an image-only encoder
        api.post("/search", files={"image": ("x.png", b"not an image", "image/png")}),
        api.post("/search", files={"image": ("x.png", b"", "image/png")}),
        api.post("/search"),  # no file
        api.post("/search?k=0", files={"image": ("q.png", (folder / "img01.png").read_bytes(), "image/png")}),
        api.get(f"/neighbours/{folder / 'img01.png'}", params={"k": "many"}),
        api.get("/neighbours/no-such-id"),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, response.text
        body = response.json()
        assert set(body) == {"error"} and body["error"] and "Traceback" not in body["error"]
    assert "not a readable image" in cases[1].json()["error"] and "k must be between" in cases[4].json()["error"]

    def broken(*_, **__):
        raise RuntimeError("disk on fire\nTraceback (most recent call last): ...")

    service.neighbours = broken
    failed = api.get(f"/neighbours/{folder / 'img01.png'}")
    assert failed.status_code == 500 and failed.json() == {"error": "internal error: RuntimeError"}


def test_text_queries_find_the_matching_text(text_index):
    api, _ = client(text_index)
    health = api.get("/health").json()
    assert health["text_queries"] and not health["image_queries"] and not health["thumbnails"]
    results = api.get("/search", params={"text": "combine two dicts into one", "k": 3}).json()["results"]
    assert results[0]["id"] == TEXTS[4] and results[0]["thumbnail"] is None  # the ids are the texts
    exact = api.get("/search", params={"text": TEXTS[2], "k": 1}).json()["results"]
    assert exact[0]["id"] == TEXTS[2] and exact[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert api.get("/search", params={"text": "   "}).status_code == 400
    assert "embeds text only" in api.post("/search", files={"image": ("q.png", b"x", "image/png")}).json()["error"]
    page = api.get("/")
    assert page.status_code == 200 and 'id="results"' in page.text


def test_the_command_refuses_a_bad_port_and_a_missing_index(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "none.faiss")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "none.faiss"), "--port", "70000"]) == 2
    assert "--port must be between" in capsys.readouterr().err


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds none (an empty IDAT): what a decompression bomb
    looks like before it is decoded, without building one."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def upload(api, data: bytes, k: int | str = 3, name: str = "q.png"):
    return api.post(f"/search?k={k}", files={"image": (name, data, "image/png")})


def test_k_is_clamped_to_the_index_size(image_index):
    index, folder = image_index
    api, _ = client(index)
    query = (folder / "img07.png").read_bytes()
    assert len(upload(api, query, k=1000).json()["results"]) == 21  # every row, no more
    near = api.get(f"/neighbours/{folder / 'img07.png'}", params={"k": 1000}).json()["results"]
    assert len(near) == 20 and len({r["id"] for r in near}) == 20  # itself left out


def test_images_are_refused_by_their_header_before_decoding(image_index):
    index, _ = image_index
    api, _ = client(index)
    for width, height in ((9000, 9000), (10000, 10000), (20000, 20000)):  # over the cap; PIL's warning; PIL's error
        response = upload(api, png_header(width, height))
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert f"{width * height:,} pixels" in error and "at most 40,000,000" in error
    assert "9000 x 9000" in upload(api, png_header(9000, 9000)).json()["error"]
    small = upload(api, png_header(12, 12))  # under the cap it is decoded, and this one has no pixels
    assert small.status_code == 400 and "not a readable image" in small.json()["error"]


def test_large_jpegs_decode_at_a_reduced_scale():
    import io

    import numpy as np
    from PIL import Image

    from contrastkit.index.query_image import read_query_image

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (1000, 1200, 3), dtype=np.uint8)).save(buffer, "JPEG")
    pixels = read_query_image(buffer.getvalue(), 3, input_size=12)  # 1/8 of each side keeps both >= 24
    assert tuple(pixels.shape) == (3, 125, 150) and pixels.dtype == torch.uint8
    full = read_query_image(buffer.getvalue(), 1, input_size=1000)  # no reduction possible
    assert tuple(full.shape) == (1, 1000, 1200)


def test_the_body_cap_is_checked_before_the_body_is_read(image_index):
    from contrastkit.index.search_service import MAX_BODY

    index, _ = image_index
    api, _ = client(index)
    declared = api.post("/search", content=b"x" * 10, headers={"content-length": str(100 * 1024 * 1024)})
    assert declared.status_code == 413 and "104857600 bytes" in declared.json()["error"]
    big = upload(api, b"\x89PNG" + b"\0" * MAX_BODY)
    assert big.status_code == 413 and f"at most {MAX_BODY}" in big.json()["error"]


def test_a_chunked_upload_is_cut_at_the_cap_on_a_real_server(image_index):
    import httpx

    from contrastkit.index.search_service import MAX_BODY
    from tests.index.test_search_page_browser import serving

    index, _ = image_index
    server, url = serving(index)
    sent = 0

    def endless():  # 200 MB without a Content-Length: the client streams it in chunks
        nonlocal sent
        boundary = b"--b\r\nContent-Disposition: form-data; name=image; filename=q.png\r\n\r\n"
        yield boundary
        for _ in range(200 * 16):
            sent += 64 * 1024
            yield b"\0" * (64 * 1024)

    try:
        headers = {"content-type": "multipart/form-data; boundary=b"}
        response = httpx.post(url + "search", content=endless(), headers=headers, timeout=60)
    finally:
        server.should_exit = True
    assert response.status_code == 413 and f"at most {MAX_BODY}" in response.json()["error"]
    assert sent < 2 * MAX_BODY  # cut near the cap (socket buffers aside), not read to the end (200 MB)


def test_an_encoder_of_another_dimension_is_refused_at_start(image_index, tmp_path, capsys):
    from contrastkit.backbones import create_backbone
    from contrastkit.index.search_service import SearchService

    index, folder = image_index
    wider = create_backbone("small_cnn", in_chans=1, widths=(4, 8, 32))
    info = {"backbone": "small_cnn", "in_chans": 1, "input_size": 12, "backbone_kwargs": {"widths": [4, 8, 32]}}
    other = save_encoder(wider.eval(), tmp_path / "wide.safetensors", info)
    with pytest.raises(ValueError) as refused:
        SearchService(index, encoder=str(other))
    message = str(refused.value)
    assert "32-dimensional" in message and "16-dimensional" in message and str(other) in message
    assert str(index) in message and "\n" not in message
    assert main(["serve", str(index), "--encoder", str(other)]) == 2
    assert message in capsys.readouterr().err
    assert main(["search", str(index), "--image", str(folder / "img01.png"), "--encoder", str(other)]) == 2
    assert message in capsys.readouterr().err  # the same check for both commands


def test_a_token_guards_every_endpoint_but_the_page(image_index):
    from fastapi.testclient import TestClient

    from contrastkit.index.search_service import SearchService, create_app

    index, folder = image_index
    token = "s3cret-token_for.tests"
    api = TestClient(create_app(SearchService(index), token=token), raise_server_exceptions=False)
    good = {"Authorization": f"Bearer {token}"}
    assert api.get("/").status_code == 200  # the page asks for the token itself
    thumb = f"/thumbnail?path={folder / 'img01.png'}"
    for method, url in (("GET", "/health"), ("POST", "/search"), ("GET", f"/neighbours/{folder / 'img01.png'}"),
                        ("GET", thumb), ("GET", "/no-such-page")):  # fmt: skip
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": token}):
            refused = api.request(method, url, headers=headers)
            assert refused.status_code == 401 and set(refused.json()) == {"error"}, (method, url, headers)
            assert refused.headers["www-authenticate"].startswith("Bearer")
    assert api.get("/health", headers=good).json()["vectors"] == 21
    assert upload(api, (folder / "img01.png").read_bytes()).status_code == 401
    found = api.post("/search?k=2", headers=good, files={"image": ("q.png", (folder / "img01.png").read_bytes())})
    assert found.status_code == 200 and len(found.json()["results"]) == 2
    assert api.get(thumb, headers={"cookie": f"contrastkit_token={token}"}).status_code == 200  # what <img> sends
    assert api.get("/health", headers={"cookie": f"contrastkit_token={token}"}).status_code == 401  # thumbnails only
    assert api.get(thumb + f"&token={token}").status_code == 401  # never from the URL


def test_the_command_refuses_a_weak_token_and_bad_options(image_index, monkeypatch, capsys):
    index, _ = image_index
    assert main(["serve", str(index), "--token", "short"]) == 2
    assert "8 or more characters" in capsys.readouterr().err
    monkeypatch.setenv("CONTRASTKIT_SERVE_TOKEN", "has space in it")
    assert main(["serve", str(index)]) == 2
    assert "8 or more characters" in capsys.readouterr().err
    assert main(["serve", str(index), "--max-batch", "0"]) == 2
    assert "--max-batch must be >= 1" in capsys.readouterr().err
    assert main(["serve", str(index), "--rate-limit", "-1"]) == 2
    assert "--rate-limit must be >= 0" in capsys.readouterr().err


def test_the_rate_limit_answers_429_with_retry_after(image_index):
    from fastapi.testclient import TestClient

    from contrastkit.index.search_service import SearchService, create_app

    index, _ = image_index
    api = TestClient(create_app(SearchService(index), rate_limit=2), raise_server_exceptions=False)
    codes = [api.get("/health").status_code for _ in range(4)]  # a burst of twice the rate
    limited = api.get("/health")
    assert codes == [200] * 4 and limited.status_code == 429
    assert limited.headers["retry-after"] == "1" and "at most 2 per second" in limited.json()["error"]


def test_bad_input_is_never_a_500(image_index, text_index):
    index, folder = image_index
    images, _ = client(index)
    texts, _ = client(text_index)
    png = (folder / "img01.png").read_bytes()
    row = folder / "img01.png"
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    cases = {
        "k=0": upload(images, png, k=0),
        "k=-1": upload(images, png, k=-1),
        "k=abc": upload(images, png, k="abc"),
        "k too large": upload(images, png, k=10**12),
        "empty upload": upload(images, b""),
        "not an image": upload(images, b"hello, world"),
        "truncated png": upload(images, png[: len(png) // 2]),
        "eps": upload(images, eps, name="q.eps"),
        "bomb": upload(images, png_header(20000, 20000)),
        "no file": images.post("/search"),
        "json body": images.post("/search", json={"image": "x"}),
        "text to an image index": images.get("/search", params={"text": "a shoe"}),
        "neighbours k=abc": images.get(f"/neighbours/{row}", params={"k": "abc"}),
        "neighbours k=0": images.get(f"/neighbours/{row}", params={"k": 0}),
        "unknown id": images.get("/neighbours/no-such-id"),
        "traversal": images.get("/thumbnail", params={"path": f"{folder}/../../../etc/passwd"}),
        "no path": images.get("/thumbnail"),
        "huge text": texts.get("/search", params={"text": "word " * 3000}),
        "text k=-1": texts.get("/search", params={"text": "a list", "k": -1}),
        "text k=abc": texts.get("/search", params={"text": "a list", "k": "abc"}),
        "empty text": texts.get("/search", params={"text": ""}),
        "image to a text index": upload(texts, png),
    }
    for name, response in cases.items():
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        body = response.json()
        assert set(body) == {"error"} and body["error"] and "Traceback" not in body["error"], name
    assert cases["bomb"].status_code == 413 and cases["eps"].status_code == 400


def test_concurrent_text_queries_are_embedded_together_with_the_same_answers(text_index):
    import asyncio

    import httpx

    from contrastkit.index.search_service import SearchService, create_app

    queries = [f"{t} {'and more words ' * i}" for i, t in enumerate(TEXTS * 3)]  # 24 texts of growing length
    service = SearchService(text_index)
    app = create_app(service)

    async def ask_all(concurrent: bool) -> list[list[dict]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:

            async def ask(text: str) -> list[dict]:
                response = await http.get("/search", params={"text": text, "k": 3})
                assert response.status_code == 200, response.text
                return response.json()["results"]

            if concurrent:
                return list(await asyncio.gather(*(ask(q) for q in queries)))
            return [await ask(q) for q in queries]

    alone = asyncio.run(ask_all(concurrent=False))
    assert set(service.text_batcher.batch_sizes) == {1}
    service.text_batcher.batch_sizes.clear()
    together = asyncio.run(ask_all(concurrent=True))
    assert max(service.text_batcher.batch_sizes) > 1  # batched for real
    for one, many in zip(alone, together, strict=True):
        assert [r["id"] for r in one] == [r["id"] for r in many]
        assert [r["score"] for r in one] == pytest.approx([r["score"] for r in many], abs=1e-5)
