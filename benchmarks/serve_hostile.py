"""The hostile requests of `serve_load.py --hostile N`: what a careless or malicious client sends to
`digitdet serve`, each with the answer the server should give. Loopback only (127.0.0.1 / localhost).

- tiny files of huge dimensions (a 4.9 kB 1-bit PNG and a 38 kB gray PNG of 39.7 MP: decompression bombs,
  413 from the header), a 77 kB 16-bit PNG and a 116 kB RGB PNG of 39.7 MP (not bombs: decoded within the
  load budget and read, 200), strips of 30000x1 and 1x30000 (422), bytes that are no image (415), a
  multipart body cut short (400), a Content-Length of 1 GB (413 before any byte is read), and a slow body
  (announces 1 MB, sends the first 200 bytes of a well-formed one, stalls: 408 after the server's
  --body-timeout);
- probe(): each alone, in turn, with the answer's time and the growth of the server's peak RSS (VmHWM,
  reset before each through /proc/PID/clear_refs where Linux allows it);
- client(): a thread sending them, in turn, beside the good clients.
"""

from __future__ import annotations

import http.client
import io
import socket
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 7280, 5456  # 39.7 MP: just under the server's 40 MP limit
LOOPBACK = ("127.0.0.1", "localhost")


@dataclass
class Kind:
    name: str
    expect: int
    body: bytes
    ctype: str
    announce: int | None = None  # Content-Length to claim (None: the body's own)
    stall: bool = False  # send the head and `body`, then nothing more (a slow client)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def kinds() -> list[Kind]:
    """The hostile requests (a few seconds to build: the 39.7 MP PNGs are encoded here)."""
    files = [("1-bit PNG 39.7 MP", "bomb1.png", _png(Image.new("1", (W, H))), 413),
             ("gray PNG 39.7 MP", "bomb8.png", _png(Image.new("L", (W, H))), 413),
             ("16-bit PNG 39.7 MP", "deep.png", _png(Image.fromarray(np.zeros((H, W), np.uint16))), 200),
             ("RGB PNG 39.7 MP", "flat.png", _png(Image.new("RGB", (W, H), (200, 200, 200))), 200),
             ("30000x1 PNG", "strip.png", _png(Image.new("L", (30000, 1))), 422),
             ("1x30000 PNG", "tall.png", _png(Image.new("L", (1, 30000))), 422),
             ("not an image", "notes.jpg", b"not an image at all\n" * 50, 415)]
    out = []
    for label, name, data, expect in files:
        body, ctype = multipart(name, data)
        out.append(Kind(f"{label} ({len(data) / 1024:.1f} kB)", expect, body, ctype))
    body, ctype = multipart("cut.png", files[4][2])
    out.append(Kind("multipart cut short", 400, body[: len(body) - 40], ctype))
    out.append(Kind("Content-Length 1 GB", 413, b"", ctype, announce=1 << 30))
    out.append(Kind("slow body (1 MB announced, its first part sent)", 408, body[:200], ctype, announce=1 << 20,
                    stall=True))
    return out


def check_loopback(url: str) -> None:
    if urllib.parse.urlsplit(url).hostname not in LOOPBACK:
        raise SystemExit(f"--hostile sends hostile requests to loopback only (127.0.0.1), not {url}")


def send(url: str, kind: Kind, timeout: float = 120.0) -> int | str:
    """One hostile POST /read over a raw socket: the answer's status, or the exception's name."""
    u = urllib.parse.urlsplit(url)
    length = kind.announce if kind.announce is not None else len(kind.body)
    head = (f"POST {u.path}read HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nContent-Type: {kind.ctype}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()
    try:
        with socket.create_connection((u.hostname, u.port), timeout=timeout) as sock:
            sock.sendall(head + kind.body)
            reply = http.client.HTTPResponse(sock)
            reply.begin()
            reply.read()
            return reply.status
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__


def _status_file(pid: int) -> Path:
    return Path(f"/proc/{pid}/status")


def rss_kb(pid: int | None, field: str = "VmHWM") -> int | None:
    if pid is None:
        return None
    try:
        for line in _status_file(pid).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak(pid: int | None) -> bool:
    """VmHWM back to the current RSS (Linux >= 4.0, our own process); False where not allowed."""
    if pid is None:
        return False
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def probe(url: str, pid: int | None, todo: list[Kind]) -> tuple[list[str], int]:
    """Each kind alone (the slow body excepted: it costs only time): markdown rows and the highest VmHWM
    seen (kB) before any reset."""
    rows, highest = [], rss_kb(pid) or 0
    for kind in todo:
        if kind.stall:
            continue
        highest = max(highest, rss_kb(pid) or 0)
        resets = reset_peak(pid)
        before = rss_kb(pid, "VmRSS" if resets else "VmHWM")
        t0 = time.perf_counter()
        status = send(url, kind)
        took = time.perf_counter() - t0
        after = rss_kb(pid)
        growth = f"{(after - before) / 1024:+.0f} MB" if after is not None and before is not None else "n/a"
        ok = "yes" if status == kind.expect else "**NO**"
        rows.append(f"| {kind.name} | {kind.expect} | {status} | {ok} | {took:.2f} | {growth} |")
        highest = max(highest, after or 0)
    return rows, highest


PROBE_HEAD = ("| hostile request, alone | expected | answer | as expected | seconds | server peak RSS growth |\n"
              "|---|---|---|---|---|---|")


def client(url: str, take: Callable[[], Kind | None], results: list, lock) -> None:
    """Send hostile requests while take() gives one; results get (kind name, expected, status, seconds)."""
    while (kind := take()) is not None:
        t0 = time.perf_counter()
        status = send(url, kind)
        with lock:
            results.append((kind.name, kind.expect, status, time.perf_counter() - t0))


def summary(results: list) -> list[str]:
    """Markdown rows per kind: sent, answers seen, as expected, slowest answer."""
    rows = []
    for name in dict.fromkeys(r[0] for r in results):
        mine = [r for r in results if r[0] == name]
        seen = ", ".join(f"{s}x{sum(r[2] == s for r in mine)}" for s in dict.fromkeys(r[2] for r in mine))
        ok = "yes" if all(r[2] == r[1] for r in mine) else "**NO**"
        rows.append(f"| {name} | {len(mine)} | {mine[0][1]} | {seen} | {ok} | {max(r[3] for r in mine):.1f} |")
    return rows


MIX_HEAD = ("| hostile request, beside the good clients | sent | expected | answers | as expected | slowest s |\n"
            "|---|---|---|---|---|---|")
