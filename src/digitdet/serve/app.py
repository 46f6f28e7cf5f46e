"""The ASGI app: routes, limits and JSON errors (see the package doc). Every refusal is a JSON object
`{"error": "..."}` with a 4xx/5xx status; the server keeps serving after any of them. Two answers come from
outside the app and are plain text: uvicorn's 503 beyond its connection limit (server.py), and
Starlette's TrustedHostMiddleware's 400 "Invalid host header" (loopback servers: see `allowed_hosts`).

A request's way in: a Host the server does not answer to -> 400; a body over the request limit -> 413
from its Content-Length, before any of it is read, or as soon as the bytes received pass the limit; a
body that has not all arrived `body_timeout` seconds after the request began -> 408; no free place in the
pool -> 503 with Retry-After, before the body is read; then the multipart body is parsed into memory
(a file over `max_bytes` -> 413 while parsing; a body cut short -> 400 "malformed upload"); each image's
header is checked (uploads.check: not an image, a bomb, a strip -> 4xx) before it takes a place in the pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import aclosing
from importlib import resources
from pathlib import PurePath

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware.trustedhost import TrustedHostMiddleware

from digitdet.serve.pool import PoolBusy, ReaderPool
from digitdet.serve.uploads import UploadError, check, clean_name, decode

MB = 1024 * 1024
FIELD = "image"
HOW = f"send the photo as multipart/form-data in the field '{FIELD}' (curl -F {FIELD}=@photo.jpg URL/read)"
RETRY_AFTER_S = 2  # about one read of a photo on two cores
# The page loads only its own files: no inline script, no CDN (there is no internet where it runs).
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


def _mb(n: int) -> str:
    """3 MB, 3.5 MB, 900 kB: the sizes in messages."""
    return f"{n / MB:.1f}".removesuffix(".0") + " MB" if n >= MB else f"{n / 1024:.1f}".removesuffix(".0") + " kB"


class _LimitBody:
    """ASGI middleware on POST bodies: over `limit` bytes -> 413, from the Content-Length before any of it
    is read, or as soon as the bytes received pass the limit (chunked uploads); not all received within
    `timeout` seconds of the request's start -> 408 (a slow client holds a connection that long at most)."""

    def __init__(self, app, limit: int, timeout: float) -> None:
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            response = _error(413, f"the request is {_mb(int(length))}, over the {_mb(self.limit)} limit")
            return await response(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        seen, done = 0, False

        async def counted():
            nonlocal seen, done
            if done:  # the body is in: what follows is only the client's disconnect, whenever it comes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise BodyTimeout(f"the request body did not arrive within {self.timeout:g} s") from None
            seen += len(message.get("body", b""))
            done = message["type"] != "http.request" or not message.get("more_body", False)
            if seen > self.limit:
                raise BodyTooLarge(f"the request is over the {_mb(self.limit)} limit")
            return message

        return await self.app(scope, counted, send)


class _Upload(MultiPartParser):
    """Starlette's multipart parser with every file kept in memory (its spooling threshold raised to the
    request limit: no temporary file on disk), a file over `max_bytes` refused while it arrives, and
    `complete` set only when the closing boundary was seen (a body cut short is malformed, not empty)."""

    def __init__(self, request: Request, stream, *, max_files: int, max_bytes: int, in_memory: int) -> None:
        super().__init__(request.headers, stream, max_files=max_files, max_fields=max_files + 8, max_part_size=MB)
        self.spool_max_size = in_memory
        self.max_bytes = max_bytes
        self.complete = False
        self._bytes = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self._bytes += end - start
            if self._bytes > self.max_bytes:
                name = clean_name(self._current_part.file.filename)
                raise UploadError(413, f"{name}: over the {_mb(self.max_bytes)} limit for one image")
        super().on_part_data(data, start, end)

    def on_end(self) -> None:
        self.complete = True


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _busy(message: str) -> JSONResponse:
    return _error(503, message, {"Retry-After": str(RETRY_AFTER_S)})


def _read_one(reader, file, name: str, max_pixels: int) -> dict:
    """In a pool worker: decode one upload, read it; the Reading's JSON plus the size its boxes refer to."""
    t0 = time.perf_counter()
    image, size = decode(file, name, max_pixels, reader.cfg.load_pixels())
    reading = reader.read_image(image, name, original_size=size)
    out = reading.to_json()
    out["width"], out["height"] = size
    out["ms"] = round((time.perf_counter() - t0) * 1000, 1)  # decoding included
    return out


def _model_name(source: str) -> str:
    """What /health shows of the model: 'bundled:...' or the checkpoint's file name, never its path."""
    return source if source.startswith("bundled:") else PurePath(source).name


def create_app(reader, *, workers: int = 2, queue: int = 16, max_bytes: int = 20 * MB,
               max_request_bytes: int | None = None, max_pixels: int = 40_000_000, max_files: int = 16,
               body_timeout: float = 30.0, allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The service over one loaded Reader. `workers` threads read (sharing it), at most `queue`
    more images wait, beyond that 503. Limits: `max_bytes` per image (413), `max_pixels` per image from its
    header (413), `max_files` images per request (400; at most workers + queue, as more could never be
    admitted at once), `max_request_bytes` per request (413; default max_bytes x max_files + 1 MB for the
    multipart framing, so every allowed request fits), `body_timeout` seconds for the body to arrive (408).
    `allowed_hosts`: the Host names served (others 400), e.g. server.LOOPBACK_HOSTS; None: any."""
    app = FastAPI(title="digitdet", summary="reads house numbers in photos", docs_url="/docs", redoc_url=None)
    app.state.reader = reader
    app.state.pool = pool = ReaderPool(reader, workers, queue)
    app.router.add_event_handler("shutdown", pool.close)
    max_files = min(max_files, pool.capacity)
    limit = max_request_bytes or max_bytes * max_files + MB
    app.state.max_request_bytes = limit
    app.add_middleware(_LimitBody, limit=limit, timeout=body_timeout)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts), www_redirect=False)
    app.mount("/static", StaticFiles(packages=[("digitdet.serve", "static")]), name="static")
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

    @app.exception_handler(BodyTimeout)
    async def _too_slow(request: Request, exc: BodyTimeout):
        return _error(408, str(exc))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        return _error(500, f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": _model_name(reader.source), "workers": pool.workers,
                "in_flight": pool.in_flight, "capacity": pool.capacity}

    @app.post("/read")
    async def read(request: Request):
        """One image (field `image`) -> its reading; several `image` files -> a list of readings."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error(422, f"no image: {HOW}")
        if pool.free == 0:  # refused before the body is read: a full pool costs the server no memory
            return _busy(pool.busy_message())
        async with aclosing(request.stream()) as stream:
            parser = _Upload(request, stream, max_files=max_files, max_bytes=max_bytes, in_memory=limit)
            try:
                form = await parser.parse()
            except MultiPartException as exc:
                message = exc.message if exc.message.startswith("Too many") else f"malformed upload ({exc.message})"
                return _error(400, message)
            except UploadError as exc:
                return _error(exc.status, exc.message)
        try:
            if not parser.complete:
                return _error(400, "malformed upload: the multipart body ends before its closing boundary "
                                   f"(cut short?); {HOW}")
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
                jobs.append((f.file, name, max_pixels))
            try:
                for job in jobs:  # the header checks first, outside the pool: no refusal waits for a worker
                    await run_in_threadpool(check, *job)
                out = await pool.run_all(_read_one, jobs)
            except PoolBusy as exc:
                return _busy(str(exc))
            except UploadError as exc:
                return _error(exc.status, exc.message)
        finally:
            await form.close()
        return out[0] if len(out) == 1 else out

    return app
