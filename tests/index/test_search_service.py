"""`contrastkit serve`: the JSON API on an image index and a text index, and its refusals (4xx with a JSON message,
never a traceback; no file outside the image root)."""

from __future__ import annotations

import pytest

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
