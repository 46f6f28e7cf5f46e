"""Binding the socket and running uvicorn on it: in the foreground (`digitdet serve`) or in a thread
(tests, benchmarks). Binding first gives a one-line error for a port in use, and port 0 a free port.

`limit_concurrency`: uvicorn answers 503 (plain text) to a request arriving while that many connections
are open or requests running, so slow clients and their bodies in memory are bounded. A server bound to a
loopback address answers only to the Host names of LOOPBACK_HOSTS (create_app's `allowed_hosts`): a web
page elsewhere cannot reach it through DNS rebinding."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

from digitdet.errors import DigitdetError

# The Host header names of this machine, any port (Starlette compares the name without the port).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts_for(host: str) -> tuple[str, ...] | None:
    """create_app's allowed_hosts for a server bound to `host`: LOOPBACK_HOSTS on loopback, else None (any)."""
    return LOOPBACK_HOSTS if is_loopback(host) else None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port); DigitdetError when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=256)
    except OSError as exc:
        raise DigitdetError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _server(app, log_level: str, limit_concurrency: int | None = None):
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=log_level == "info", timeout_graceful_shutdown=5,
                            limit_concurrency=limit_concurrency)
    return uvicorn.Server(config)


def run(app, sock: socket.socket, log_level: str = "warning", limit_concurrency: int | None = None) -> None:
    """Serve `app` on `sock` until interrupted (Ctrl-C / SIGTERM: uvicorn shuts down gracefully)."""
    _server(app, log_level, limit_concurrency).run(sockets=[sock])


@contextlib.contextmanager
def background(app, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0,
               limit_concurrency: int | None = None) -> Iterator[str]:
    """Serve `app` in a daemon thread while the block runs; yields the base URL ('http://127.0.0.1:PORT/')."""
    sock = bind(host, port)
    server = _server(app, "warning", limit_concurrency)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="digitdet-serve")
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise DigitdetError("the server did not start")
            time.sleep(0.02)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
