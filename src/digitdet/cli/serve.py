"""`digitdet serve`: the reading service and its web page on one port. Parsing and start-up only; the
work is in digitdet.serve (app, pool, uploads) and digitdet.reading."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _cmd_serve(a: argparse.Namespace) -> int:
    from digitdet.errors import DigitdetError

    bad = [o for o in a.overrides if "=" not in o or "." not in o.partition("=")[0]]
    if bad:
        raise DigitdetError(f"not a section.key=value override: {' '.join(bad)}")
    if a.workers < 1 or a.queue < 0:
        raise DigitdetError("--workers must be at least 1 and --queue at least 0")
    for flag, value, least in (("--max-mb", a.max_mb, 1), ("--max-connections", a.max_connections, 1),
                               ("--body-timeout", a.body_timeout, 1)):
        if value < least:
            raise DigitdetError(f"{flag} must be at least {least} (got {value:g})")

    from digitdet.serve.server import allowed_hosts_for, bind, run, url_of

    sock = bind(a.host, a.port)  # first: a port in use is one line, before the model loads
    try:
        import torch

        from digitdet.reading.reader import Reader
        from digitdet.serve import create_app

        # The CPUs are shared among the workers: each torch call gets its part (at least one thread).
        torch.set_num_threads(max(1, _cpus() // a.workers))
        reader = Reader(a.checkpoint, overrides=tuple(a.overrides))
        hosts = allowed_hosts_for(a.host)  # loopback: only this machine's names in the Host header
        app = create_app(reader, workers=a.workers, queue=a.queue, max_bytes=a.max_mb * 1024 * 1024,
                         body_timeout=a.body_timeout, allowed_hosts=hosts)
        print(f"digitdet serve: {url_of(sock)}  (model {reader.source}, {a.workers} worker(s) on "
              f"{reader.device}, queue {a.queue}; Ctrl-C stops)", flush=True)
        if hosts is None:
            print("digitdet serve: listening beyond this machine; there is no authentication", file=sys.stderr)
        # uvicorn shuts down gracefully on Ctrl-C / SIGTERM, then re-raises the signal: a clean stop, exit 0.
        signal.signal(signal.SIGTERM, _interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            run(app, sock, log_level="warning" if a.quiet else "info", limit_concurrency=a.max_connections)
        print("digitdet serve: stopped", file=sys.stderr)
    finally:
        sock.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="an HTTP service and web page that read house numbers (POST /read, GET /)")
    s.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides (as for read)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    s.add_argument("--port", type=int, default=8000, help="port (0: any free port; the start-up line says which)")
    s.add_argument("--checkpoint", help="a digitdet checkpoint (default: the reader shipped in the package)")
    s.add_argument("--workers", type=int, default=2,
                   help="images read at once (threads sharing one model; the CPUs are divided among them)")
    s.add_argument("--queue", type=int, default=16, help="images that may wait for a worker; beyond: 503 busy")
    s.add_argument("--max-mb", type=int, default=20,
                   help="largest upload per image in MB, at least 1 (413 beyond); a request may carry up to "
                        "min(16, workers + queue) images, so its limit is that many times this, plus 1 MB")
    s.add_argument("--max-connections", type=int, default=32,
                   help="open connections at most (uvicorn's limit_concurrency; 503 beyond): bounds slow clients")
    s.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds a request's body may take to arrive (408 beyond)")
    s.set_defaults(func=_cmd_serve)
