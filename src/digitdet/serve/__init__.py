"""`digitdet serve`: an HTTP service and a web page over digitdet.reading (the same Reader as `digitdet read`).

    from digitdet.reading.reader import Reader
    from digitdet.serve import create_app
    app = create_app(Reader("runs/demo/best.pt"), workers=2)   # an ASGI app; run it with uvicorn

Routes: `GET /` the page (static/ files, package data, no CDN), `GET /health`, `POST /read` (multipart
field `image`, one or several files). Modules: uploads (bytes -> RGB image, the limits), pool (the bounded
inference pool), app (routes and JSON errors), server (binding a socket and running uvicorn).
It may import the ground floor, digitdet.data and digitdet.reading (and what they stand on), never
training, the studies or cli.
"""

from digitdet.serve.app import create_app

__all__ = ["create_app"]
