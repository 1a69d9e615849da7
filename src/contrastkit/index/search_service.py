"""``contrastkit serve``: an index behind an HTTP JSON API and a small web page (FastAPI + uvicorn).

Endpoints: ``GET /search?text=...&k=10``, ``POST /search`` (an image file, form field ``image``), ``GET
/neighbours/{id}`` (the rows nearest to an indexed row, by its id), ``GET /thumbnail?path=...`` (an indexed image
under the allowed root, nothing outside it), ``GET /health`` and ``GET /`` (the page). A bad request gets a 4xx with
``{"error": "..."}``; an unexpected failure a 500 with a one-line message, never a traceback.

Under hostile input: ``k`` is clamped to the index size (and at most ``MAX_K``); a body over ``MAX_BODY`` bytes is
refused while it streams in (:class:`~contrastkit.index.body_limit.BodyLimit`); an image of more than 40 megapixels
is refused from its header, before decoding (:func:`~contrastkit.index.query_image.read_query_image`); an encoder
whose dimension differs from the index's is refused at start. Concurrent queries are embedded together
(:class:`~contrastkit.index.query_batcher.QueryBatcher`). Optional: a bearer token
(:class:`~contrastkit.index.bearer_token.BearerToken`) and a per-client rate limit
(:class:`~contrastkit.index.rate_limit.RateLimit`).
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations (File, UploadFile) at runtime
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from contrastkit.backbones.embed_by_length import encode_by_length
from contrastkit.index.embedding_index import EmbeddingIndex
from contrastkit.index.query_batcher import QueryBatcher
from contrastkit.index.query_image import read_query_image
from contrastkit.index.request_error import RequestError
from contrastkit.index.search import load_index, query_encoder

__all__ = ["MAX_BODY", "MAX_K", "MAX_UPLOAD", "RequestError", "SearchService", "create_app", "serve"]

MAX_K = 1000  # results per query
MAX_UPLOAD = 20 * 1024 * 1024  # bytes of an uploaded query image
MAX_BODY = MAX_UPLOAD + 64 * 1024  # bytes of a request body: the image and its multipart form around it
MAX_TEXT = 10_000  # characters of a text query
MAX_BATCH = 16  # queries embedded together: one text chunk, so every query is answered as soon as its chunk is
# embedded (at 64, four chunks' callers waited for the last; 200 clients on 2 cores: median 1.3-1.7x lower, 1.0-1.8x
# the queries/s, p99 unchanged; benchmarks/serve.py, 2026-12-06)
TEXT_CHUNK = 16  # texts per encoder call within a batch, sorted by length (MiniLM on 2 CPU cores: 4.9 ms a text at
# 16, 5.4 at 32, 6.8 at 64, 10.5 one by one; 2026-12-06)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


class SearchService:
    """The index, its ids, the encoder that embeds queries, and where thumbnails may come from. Without an encoder
    (none given, none recorded with the index) it answers ``/neighbours`` only.

    Args:
        index_path: an index written by ``contrastkit index build`` (ids and encoder recorded beside it).
        encoder: the encoder file that embeds queries (default: the one recorded with the index); one whose
            dimension differs from the index's is refused here, at start.
        image_root: ids that are image files under this folder get thumbnails; None: the common folder of the
            ids when they are absolute image paths, else no thumbnails.
        max_batch: most concurrent queries embedded by one encoder call (1: one at a time).
    """

    def __init__(
        self,
        index_path: str | os.PathLike,
        encoder: str | None = None,
        image_root: str | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.index_path = Path(index_path)
        self.index: EmbeddingIndex = load_index(index_path)
        self.encoder = query_encoder(index_path, self.index, encoder)  # None: neighbours of rows only
        self.ids = Path(str(index_path) + ".ids.txt").read_text(encoding="utf-8").splitlines()
        if len(self.ids) != len(self.index):
            raise ValueError(f"{index_path}: {len(self.ids)} ids for {len(self.index)} vectors")
        self.row_of = {name: row for row, name in enumerate(self.ids)}
        if self.index.kind in ("ivf", "ivfpq"):  # rows can be read back by position
            import faiss

            faiss.extract_index_ivf(self.index.index).make_direct_map()
        self.image_root = Path(image_root).resolve() if image_root else _common_image_root(self.ids)
        self.text_batcher = QueryBatcher(self._encode_texts, max_batch) if self.embeds_text else None
        self.image_batcher = QueryBatcher(self._encode_images, max_batch) if self.embeds_images else None

    @property
    def embeds_text(self) -> bool:
        from contrastkit.backbones.encoder import TextEncoder

        return isinstance(self.encoder, TextEncoder)

    @property
    def embeds_images(self) -> bool:
        from contrastkit.backbones.encoder import ImageEncoder

        return isinstance(self.encoder, ImageEncoder)

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "vectors": len(self.index),
            "dim": self.index.dim,
            "index_kind": self.index.kind,
            "encoder": getattr(self.encoder, "encoder_path", None),
            "text_queries": self.embeds_text,
            "image_queries": self.embeds_images,
            "thumbnails": self.image_root is not None,
        }

    def results(self, features: np.ndarray, k: int, skip: int | None = None) -> list[dict]:
        """The ``k`` rows nearest to ``(1, D)`` features (all of them when the index holds fewer), row ``skip``
        left out."""
        found = self.index.search(features, k + (skip is not None))  # (1, k'): clamped to the index size
        rows = [(float(s), int(i)) for s, i in zip(found.scores[0], found.ids[0], strict=True) if i >= 0 and i != skip]
        return [
            {"rank": r + 1, "id": self.ids[i], "score": s, "thumbnail": self.thumbnail_url(self.ids[i])}
            for r, (s, i) in enumerate(rows[:k])
        ]

    def _encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings ``(B, D)`` of a batch of text queries, encoded in chunks of similar length: each chunk is
        padded to its own longest text, not the batch's (a text's embedding does not depend on its companions)."""
        features = torch.empty(len(texts), self.encoder.feature_dim)  # (B, D)
        for rows, z in encode_by_length(self.encoder.encode_text, texts, TEXT_CHUNK):
            features[rows] = z.float()  # (c, D)
        return features

    def _encode_images(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.encoder.encode_image(torch.stack(list(images))).float()  # (B, C, S, S) -> (B, D)

    def check_text(self, text: str) -> None:
        """Refuse a text query this service cannot or will not embed."""
        if not self.embeds_text:
            what = "embeds images only: search it with an image" if self.encoder else "is unknown: no text queries"
            raise RequestError(400, f"this index's encoder {what}")
        if not text or not text.strip():
            raise RequestError(400, "text is empty: give a query sentence")
        if len(text) > MAX_TEXT:
            raise RequestError(400, f"text is {len(text)} characters long; at most {MAX_TEXT}")

    async def search_text(self, text: str, k: int = 10) -> list[dict]:
        """The ``k`` rows nearest to ``text``, embedded together with the text queries that arrive with it."""
        k = _check_k(k)
        self.check_text(text)
        features = await self.text_batcher.embed(text)  # (D,)
        return self.results(features[None], k)  # ~0.1 ms: in the event loop, not one thread hop per query

    def prepare_image(self, data: bytes) -> torch.Tensor:
        """An uploaded image as the encoder's input ``(C, S, S)``; refused (4xx) when it is not one or too large."""
        if not self.embeds_images:
            what = "embeds text only: search it with text" if self.encoder else "is unknown: no image queries"
            raise RequestError(400, f"this index's encoder {what}")
        if len(data) > MAX_UPLOAD:
            raise RequestError(413, f"the uploaded image has {len(data)} bytes; at most {MAX_UPLOAD}")
        preprocess = self.encoder.preprocess
        pixels = read_query_image(data, preprocess.in_chans, preprocess.size)  # (C, H, W) uint8
        return preprocess(pixels)  # (C, S, S)

    async def search_image(self, data: bytes, k: int = 10) -> list[dict]:
        """The ``k`` rows nearest to an uploaded image, embedded together with the images that arrive with it."""
        k = _check_k(k)
        image = await asyncio.to_thread(self.prepare_image, data)  # (C, S, S)
        features = await self.image_batcher.embed(image)  # (D,)
        return self.results(features[None], k)  # ~0.1 ms: in the event loop, not one thread hop per query

    def neighbours(self, name: str, k: int = 10) -> list[dict]:
        k = _check_k(k)
        row = self.row_of.get(name)
        if row is None:
            raise RequestError(404, f"no indexed row has the id {name!r}")
        if self.index.vectors is not None:  # the exact vector from disk, not its compressed code
            vector = self.index.vectors.take(np.array([row]))  # (1, D)
        else:
            vector = self.index.index.reconstruct(row)[None]  # (1, D), already normalised
        return self.results(vector, k, skip=row)

    def thumbnail_url(self, name: str) -> str | None:
        if self.image_root is None or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            return None
        from urllib.parse import quote

        return f"/thumbnail?path={quote(name)}"

    def thumbnail_path(self, name: str) -> Path:
        """The file of an indexed image id, when it lies under the allowed root (symlinks and ``..`` resolved
        first); anything else is refused."""
        if self.image_root is None:
            raise RequestError(404, "this service has no image root: thumbnails are off")
        if name not in self.row_of:
            raise RequestError(404, "not an indexed image")
        path = Path(name if os.path.isabs(name) else self.image_root / name).resolve()
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_relative_to(self.image_root):
            raise RequestError(403, "that path is outside the image root")
        if not path.is_file():
            raise RequestError(404, "the image file is gone")
        return path


def _check_k(k: int) -> int:
    if not 1 <= k <= MAX_K:
        raise RequestError(400, f"k must be between 1 and {MAX_K}, got {k}")
    return k


def _common_image_root(ids: list[str]) -> Path | None:
    """The deepest folder holding every id, when all ids are absolute image paths."""
    if not ids or not all(os.path.isabs(i) and Path(i).suffix.lower() in IMAGE_SUFFIXES for i in ids):
        return None
    return Path(os.path.commonpath([os.path.dirname(i) for i in ids])).resolve()


def create_app(service: SearchService, token: str | None = None, rate_limit: float = 0.0):
    """The FastAPI application serving ``service``: bodies over ``MAX_BODY`` refused while streaming, and with
    ``token`` every request but the page's needs ``Authorization: Bearer TOKEN``; ``rate_limit`` > 0 allows each
    client address that many requests per second (0: no limit)."""
    from fastapi import FastAPI, File, Query, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

    from contrastkit.index.bearer_token import BearerToken
    from contrastkit.index.body_limit import BodyLimit
    from contrastkit.index.rate_limit import RateLimit
    from contrastkit.index.search_page import PAGE

    app = FastAPI(title="contrastkit search", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY)  # the last added runs first: rate limit, token, body size
    if token is not None:
        app.add_middleware(BearerToken, token=token)
    if rate_limit > 0:
        app.add_middleware(RateLimit, rate=rate_limit)

    @app.exception_handler(RequestError)
    async def refused(_: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'request'}: {e['msg']}" for e in error.errors())
        return JSONResponse({"error": problems}, status_code=400)

    @app.exception_handler(Exception)
    async def failed(_: Request, error: Exception) -> JSONResponse:  # never a traceback to the client
        return JSONResponse({"error": f"internal error: {type(error).__name__}"}, status_code=500)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE

    @app.get("/health")
    def health() -> dict[str, Any]:
        return service.health()

    @app.get("/search")
    async def search_text(text: str = Query(""), k: int = Query(10)) -> dict[str, Any]:
        return {"query": text, "results": await service.search_text(text, k)}

    @app.post("/search")
    async def search_image(image: Annotated[UploadFile, File()], k: int = Query(10)) -> dict[str, Any]:
        data = await image.read(MAX_UPLOAD + 1)
        return {"query": image.filename, "results": await service.search_image(data, k)}

    @app.get("/neighbours/{name:path}")
    def neighbours(name: str, k: int = Query(10)) -> dict[str, Any]:
        return {"query": name, "results": service.neighbours(name, k)}

    @app.get("/thumbnail")
    def thumbnail(path: str = Query(...)) -> FileResponse:
        return FileResponse(service.thumbnail_path(path))

    return app


def serve(
    index_path: str,
    encoder: str | None,
    host: str,
    port: int,
    image_root: str | None,
    token: str | None = None,
    rate_limit: float = 0.0,
    max_batch: int = MAX_BATCH,
) -> None:
    """Load the index and encoder (refusing an encoder of another dimension), then serve until interrupted."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModuleNotFoundError(
            f"contrastkit serve needs {', '.join(missing)}: pip install 'contrastkit[serve]' (FastAPI, uvicorn, "
            "python-multipart)"
        )
    import uvicorn

    if token is not None:
        from contrastkit.index.bearer_token import check_token

        check_token(token)
    service = SearchService(index_path, encoder, image_root, max_batch)
    app = create_app(service, token, rate_limit)
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: serving on {host} without a token: anyone who can reach the port can query the index "
              "(--token or CONTRASTKIT_SERVE_TOKEN)", file=sys.stderr)  # fmt: skip
    print(f"serving {len(service.index)} vectors of {index_path} on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
