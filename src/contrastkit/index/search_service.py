"""``contrastkit serve``: an index behind an HTTP JSON API and a small web page (FastAPI + uvicorn).

Endpoints: ``GET /search?text=...&k=10``, ``POST /search`` (an image file, form field ``image``), ``GET
/neighbours/{id}`` (the rows nearest to an indexed row, by its id), ``GET /thumbnail?path=...`` (an indexed image
under the allowed root, nothing outside it), ``GET /health`` and ``GET /`` (the page). A bad request gets a 4xx with
``{"error": "..."}``; an unexpected failure a 500 with a one-line message, never a traceback.
"""

import io
import os
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch

from contrastkit.index.search import load_index

MAX_K = 1000  # results per query
MAX_UPLOAD = 20 * 1024 * 1024  # bytes of an uploaded query image
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


class RequestError(ValueError):
    """A request the service refuses: its HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SearchService:
    """The index, its ids, the encoder that embeds queries, and where thumbnails may come from. Without an encoder
    (none given, none recorded with the index) it answers ``/neighbours`` only.

    Args:
        index_path: an index written by ``contrastkit index build`` (ids and encoder recorded beside it).
        encoder: the encoder file that embeds queries (default: the one recorded with the index).
        image_root: ids that are image files under this folder get thumbnails; None: the common folder of the
            ids when they are absolute image paths, else no thumbnails.
    """

    def __init__(self, index_path: str | os.PathLike, encoder: str | None = None, image_root: str | None = None):
        import json

        from contrastkit.backbones.encoder_file import load_encoder

        self.index_path = Path(index_path)
        self.index = load_index(index_path)
        source = Path(str(index_path) + ".source.json")
        encoder = encoder or (
            json.loads(source.read_text(encoding="utf-8")).get("encoder_path") if source.is_file() else None
        )
        self.encoder = load_encoder(encoder) if encoder else None  # None: neighbours of rows only
        self.ids = Path(str(index_path) + ".ids.txt").read_text(encoding="utf-8").splitlines()
        if len(self.ids) != len(self.index):
            raise ValueError(f"{index_path}: {len(self.ids)} ids for {len(self.index)} vectors")
        self.row_of = {name: row for row, name in enumerate(self.ids)}
        if self.index.kind in ("ivf", "ivfpq"):  # rows can be read back by position
            import faiss

            faiss.extract_index_ivf(self.index.index).make_direct_map()
        self.image_root = Path(image_root).resolve() if image_root else _common_image_root(self.ids)

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

    def _results(self, features: torch.Tensor | np.ndarray, k: int, skip: int | None = None) -> list[dict]:
        k = _check_k(k)
        found = self.index.search(features, min(k + (skip is not None), len(self.index)))
        rows = [(float(s), int(i)) for s, i in zip(found.scores[0], found.ids[0], strict=True) if i >= 0 and i != skip]
        return [
            {"rank": r + 1, "id": self.ids[i], "score": s, "thumbnail": self.thumbnail_url(self.ids[i])}
            for r, (s, i) in enumerate(rows[:k])
        ]

    def search_text(self, text: str, k: int = 10) -> list[dict]:
        if not self.embeds_text:
            what = "embeds images only: search it with an image" if self.encoder else "is unknown: no text queries"
            raise RequestError(400, f"this index's encoder {what}")
        if not text or not text.strip():
            raise RequestError(400, "text is empty: give a query sentence")
        if len(text) > 10000:
            raise RequestError(400, f"text is {len(text)} characters long; at most 10000")
        with torch.no_grad():
            features = self.encoder.encode_text([text]).float()  # (1, D)
        return self._results(features, k)

    def search_image(self, data: bytes, k: int = 10) -> list[dict]:
        from PIL import Image, UnidentifiedImageError

        if not self.embeds_images:
            what = "embeds text only: search it with text" if self.encoder else "is unknown: no image queries"
            raise RequestError(400, f"this index's encoder {what}")
        if not data:
            raise RequestError(400, "the uploaded image is empty")
        if len(data) > MAX_UPLOAD:
            raise RequestError(413, f"the uploaded image has {len(data)} bytes; at most {MAX_UPLOAD}")
        try:
            with Image.open(io.BytesIO(data)) as picture:
                picture.load()
                image = picture.copy()
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise RequestError(400, f"the upload is not a readable image ({type(e).__name__})") from None
        with torch.no_grad():
            features = self.encoder.encode_image(self.encoder.preprocess(image)[None])  # (1, D)
        return self._results(features, k)

    def neighbours(self, name: str, k: int = 10) -> list[dict]:
        row = self.row_of.get(name)
        if row is None:
            raise RequestError(404, f"no indexed row has the id {name!r}")
        if self.index.vectors is not None:  # the exact vector from disk, not its compressed code
            vector = self.index.vectors.take(np.array([row]))  # (1, D)
        else:
            vector = self.index.index.reconstruct(row)[None]  # (1, D), already normalised
        return self._results(vector, k, skip=row)

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


def create_app(service: SearchService):
    """The FastAPI application serving ``service``."""
    from fastapi import FastAPI, File, Query, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

    from contrastkit.index.search_page import PAGE

    app = FastAPI(title="contrastkit search", docs_url=None, redoc_url=None)

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
    def search_text(text: str = Query(""), k: int = Query(10)) -> dict[str, Any]:
        return {"query": text, "results": service.search_text(text, k)}

    @app.post("/search")
    async def search_image(image: Annotated[UploadFile, File()], k: int = Query(10)) -> dict[str, Any]:
        data = await image.read(MAX_UPLOAD + 1)
        return {"query": image.filename, "results": service.search_image(data, k)}

    @app.get("/neighbours/{name:path}")
    def neighbours(name: str, k: int = Query(10)) -> dict[str, Any]:
        return {"query": name, "results": service.neighbours(name, k)}

    @app.get("/thumbnail")
    def thumbnail(path: str = Query(...)) -> FileResponse:
        return FileResponse(service.thumbnail_path(path))

    return app


def serve(index_path: str, encoder: str | None, host: str, port: int, image_root: str | None) -> None:
    """Load the index and encoder, then serve until interrupted."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModuleNotFoundError(
            f"contrastkit serve needs {', '.join(missing)}: pip install 'contrastkit[serve]' (FastAPI, uvicorn, "
            "python-multipart)"
        )
    import uvicorn

    service = SearchService(index_path, encoder, image_root)
    print(f"serving {len(service.index)} vectors of {index_path} on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning")
