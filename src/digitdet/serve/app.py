"""The ASGI app: routes, limits and JSON errors (see the package doc). Every refusal is a JSON object
`{"error": "..."}` with a 4xx/5xx status; the server keeps serving after any of them."""

from __future__ import annotations

import time
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitdet.serve.pool import PoolBusy, ReaderPool
from digitdet.serve.uploads import UploadError, clean_name, decode

MB = 1024 * 1024
FIELD = "image"
HOW = f"send the photo as multipart/form-data in the field '{FIELD}' (curl -F {FIELD}=@photo.jpg URL/read)"
# The page loads only its own files: no inline script, no CDN (there is no internet where it runs).
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class BodyTooLarge(Exception):
    pass


class _LimitBody:
    """ASGI middleware: a POST body over `limit` bytes is refused (413) from its Content-Length before any
    of it is read, or as soon as the bytes received pass the limit (chunked uploads)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            response = _error(413, f"the request is {int(length) / MB:.1f} MB, over the {self.limit / MB:g} MB limit")
            return await response(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(f"the request is over the {self.limit / MB:g} MB limit")
            return message

        return await self.app(scope, counted, send)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _read_one(reader, file, name: str, max_pixels: int) -> dict:
    """In a pool worker: decode one upload, read it; the Reading's JSON plus the size its boxes refer to."""
    t0 = time.perf_counter()
    image, size = decode(file, name, max_pixels, reader.cfg.load_pixels())
    reading = reader.read_image(image, name, original_size=size)
    out = reading.to_json()
    out["width"], out["height"] = size
    out["ms"] = round((time.perf_counter() - t0) * 1000, 1)  # decoding included
    return out


def create_app(reader, *, workers: int = 2, queue: int = 16, max_bytes: int = 20 * MB,
               max_request_bytes: int = 64 * MB, max_pixels: int = 40_000_000, max_files: int = 16) -> FastAPI:
    """The service over one loaded Reader. `workers` threads read (sharing it), at most `queue`
    more images wait, beyond that 503. Limits: `max_bytes` per image (413), `max_request_bytes` per request
    (413), `max_pixels` per image from its header (413), `max_files` images per request (400; at most
    workers + queue, as more could never be admitted at once)."""
    app = FastAPI(title="digitdet", summary="reads house numbers in photos", docs_url="/docs", redoc_url=None)
    app.state.reader = reader
    app.state.pool = pool = ReaderPool(reader, workers, queue)
    app.router.add_event_handler("shutdown", pool.close)
    app.add_middleware(_LimitBody, limit=max_request_bytes)
    app.mount("/static", StaticFiles(packages=[("digitdet.serve", "static")]), name="static")
    max_files = min(max_files, pool.capacity)
    page = resources.files("digitdet.serve").joinpath("static", "index.html").read_text(encoding="utf-8")

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        message = {404: f"not found: {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
        return _error(exc.status_code, str(message))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return _error(422, f"invalid request: {exc.errors()[0].get('msg', exc)}" if exc.errors() else "invalid request")

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge):
        return _error(413, str(exc))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        return _error(500, f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": reader.source, "workers": pool.workers, "in_flight": pool.in_flight,
                "capacity": pool.capacity}

    @app.post("/read")
    async def read(request: Request):
        """One image (field `image`) -> its reading; several `image` files -> a list of readings."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error(422, f"no image: {HOW}")
        async with request.form(max_files=max_files, max_fields=max_files + 8, max_part_size=MB) as form:
            items = form.getlist(FIELD)
            if not items:
                return _error(422, f"no field '{FIELD}' in the form: {HOW}")
            files = [f for f in items if isinstance(f, UploadFile)]
            if len(files) < len(items):
                return _error(422, f"the field '{FIELD}' must be a file, not text: {HOW}")
            jobs = []
            for f in files:
                name = clean_name(f.filename)
                if not f.size:
                    return _error(400, f"{name}: empty file (0 bytes)")
                if f.size > max_bytes:
                    return _error(413, f"{name}: {f.size / MB:.1f} MB is over the {max_bytes / MB:g} MB limit")
                jobs.append((f.file, name, max_pixels))
            try:
                out = await pool.run_all(_read_one, jobs)
            except PoolBusy as exc:
                return _error(503, str(exc))
            except UploadError as exc:
                return _error(exc.status, exc.message)
        return out[0] if len(out) == 1 else out

    return app
