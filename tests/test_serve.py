"""`digitdet serve`: every route and bad input in-process (FastAPI's TestClient), the bounded pool (503 when
full, all-or-nothing admission), concurrent reads, slow and early-refused bodies and the connection limit
over a real socket, the pixel budget, and the CLI (start-up line, errors, Host names)."""

import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from digitdet.cli import main
from digitdet.data.images import fit_size
from digitdet.reading.reader import Reader
from digitdet.serve import app as app_mod
from digitdet.serve import create_app
from digitdet.serve.pool import PoolBusy, ReaderPool
from digitdet.serve.server import background, bind
from tiny import train_tiny

MB = 1024 * 1024

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette >= 1.0 would rather have httpx2 under its TestClient; httpx works
    from fastapi.testclient import TestClient

READ_KEYS = {"file", "number", "confidence", "digits", "candidates", "ms"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def reader(checkpoint):
    return Reader(checkpoint[1], overrides=("predict.read_thresh=0.0",))


@pytest.fixture(scope="module")
def client(reader):
    with TestClient(create_app(reader, workers=2, queue=2)) as c:
        yield c


def encoded(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo(checkpoint) -> bytes:
    return encoded(Image.open(checkpoint[0] / "test" / "1.png").convert("RGB"))


def test_health_and_page(client):
    h = client.get("/health")
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["model"] == "best.pt"  # no path
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'type="file"' in page.text and 'capture="environment"' in page.text and 'id="view"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r'(src|href)="(https?:)?//', page.text)  # its own files only: no CDN
    for name, kind in [("app.js", "javascript"), ("style.css", "text/css")]:
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]


def test_read_is_the_read_command_json(client, checkpoint, photo, tmp_path, capsys):
    r = client.post("/read", files={"image": ("../../etc/house 12.png", photo, "image/png")})
    assert r.status_code == 200
    got = r.json()
    assert set(got) == READ_KEYS | {"width", "height"} and got["file"] == "house 12.png"  # a name, never a path
    assert (got["width"], got["height"]) == Image.open(io.BytesIO(photo)).size and got["ms"] > 0
    (tmp_path / "house.png").write_bytes(photo)
    assert main(["-q", "read", "--json", str(tmp_path / "house.png"), "predict.read_thresh=0.0",
                 "--checkpoint", str(checkpoint[1])]) == 0
    (cli,) = json.loads(capsys.readouterr().out)
    assert got["digits"], "the tiny model with read_thresh 0 finds boxes"
    for key in ("number", "confidence", "digits", "candidates"):
        assert got[key] == cli[key]


def test_several_images_give_a_list(client, photo):
    r = client.post("/read", files=[("image", ("a.png", photo)), ("image", ("b.png", photo))])
    assert r.status_code == 200
    a, b = r.json()
    assert (a["file"], b["file"]) == ("a.png", "b.png") and a["number"] == b["number"]


def test_exif_orientation_is_applied(client, checkpoint):
    """A phone photo stored sideways with Orientation=6 is read upright; boxes refer to the upright size."""
    upright = Image.open(checkpoint[0] / "test" / "1.png").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: the viewer turns it 90 degrees clockwise
    stored = encoded(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)
    got = client.post("/read", files={"image": ("phone.jpg", stored)}).json()
    assert (got["width"], got["height"]) == upright.size
    for d in got["digits"]:
        assert 0 <= d["box"][0] <= d["box"][2] <= upright.width and 0 <= d["box"][3] <= upright.height


def test_transparent_and_grayscale_images_are_read(client):
    for img in (Image.new("RGBA", (80, 50), (0, 0, 0, 0)), Image.new("L", (80, 50), 128), Image.new("I;16", (80, 50))):
        assert client.post("/read", files={"image": ("x.png", encoded(img))}).status_code == 200


BIG = encoded(Image.new("1", (8000, 6000)))  # 48 MP in a few kB: refused from its header, never decoded
CUT = b'--B\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'  # then no end
BOMB = encoded(Image.new("1", (2600, 2000)))  # 5.2 MP in ~700 bytes: under 40 MP, still a bomb
BAD = {  # name: (the request, given the good photo's bytes; status; words the error must contain)
    "not an image": (lambda p: {"files": {"image": ("notes.jpg", b"not an image at all")}}, 415,
                     ["notes.jpg", "not an image"]),
    "empty": (lambda p: {"files": {"image": ("empty.png", b"")}}, 400, ["empty.png", "empty"]),
    "truncated": (lambda p: {"files": {"image": ("cut.png", p[: len(p) // 2])}}, 422, ["cut.png", "cannot decode"]),
    "too many pixels": (lambda p: {"files": {"image": ("big.png", BIG)}}, 413, ["big.png", "48 MP", "40 MP limit"]),
    "too many bytes": (lambda p: {"files": {"image": ("huge.jpg", b"\xff" * (20 * 1024 * 1024 + 1))}}, 413,
                       ["huge.jpg", "20 MB limit"]),
    "bomb": (lambda p: {"files": {"image": ("bomb.png", BOMB)}}, 413, ["bomb.png", "pixels per byte", "1,000"]),
    "strip": (lambda p: {"files": {"image": ("strip.png", encoded(Image.new("L", (30000, 1))))}}, 422,
              ["strip.png", "30000:1", "20:1 limit"]),
    "not listed": (lambda p: {"files": {"image": ("x.png", encoded(Image.new("RGB", (8, 8)), "PPM"))}}, 415,
                   ["x.png", "not one of PNG, JPEG, BMP, GIF, TIFF, WEBP"]),
    "no image field": (lambda p: {"files": {"photo": ("a.png", p)}}, 422, ["no field 'image'", "curl -F image=@"]),
    "image as text": (lambda p: {"files": {"other": ("a.png", p)}, "data": {"image": "x"}}, 422, ["must be a file"]),
    "json body": (lambda p: {"json": {"image": "a.png"}}, 422, ["multipart/form-data"]),
    "no body": (lambda p: {}, 422, ["multipart/form-data"]),
    "too many files": (lambda p: {"files": [("image", ("a.png", p))] * 5}, 400, ["Too many files"]),  # capacity 4
    "cut short": (lambda p: {"content": CUT + p[:100], "headers": {"content-type": "multipart/form-data; boundary=B"}},
                  400, ["malformed upload", "ends before its closing boundary"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_are_4xx_json_and_the_server_goes_on(client, photo, case):
    make, status, words = BAD[case]
    r = client.post("/read", **make(photo))
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and all(w in r.json()["error"] for w in words), r.json()
    assert client.post("/read", files={"image": ("ok.png", photo)}).status_code == 200


def test_other_routes_and_methods_are_json_errors(client):
    assert client.get("/nope").json() == {"error": "not found: /nope"}
    assert client.get("/read").status_code == 405 and "GET" in client.get("/read").json()["error"]
    assert client.delete("/health").status_code == 405


def test_request_size_limit_before_and_while_reading(reader, photo):
    with TestClient(create_app(reader, workers=1, queue=0, max_request_bytes=2 * MB)) as c:
        big = c.post("/read", files={"image": ("a.png", b"x" * 3 * MB)})  # Content-Length says so: not read
        assert big.status_code == 413 and re.fullmatch(r"the request is 3(\.0)? MB, over the 2 MB limit",
                                                       big.json()["error"]), big.json()
        body = encoded(Image.new("RGB", (64, 64)))  # small, accepted
        assert c.post("/read", files={"image": ("a.png", body)}).status_code == 200
        chunks = iter([b"--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n",
                       *[b"y" * MB] * 3, b"\r\n--B--\r\n"])  # chunked: no Content-Length, counted as it comes
        r = c.post("/read", content=chunks, headers={"content-type": "multipart/form-data; boundary=B"})
        assert r.status_code == 413 and r.json()["error"] == "the request is over the 2 MB limit"
        assert c.get("/health").status_code == 200


def test_uploads_stay_in_memory(client, monkeypatch):
    """Starlette spools a part over 1 MB to a temporary file; here every upload stays in memory."""
    disk = []
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda *a, **k: disk.append(a) or io.BytesIO())
    r = client.post("/read", files={"image": ("big.png", b"x" * 3 * MB)})
    assert r.status_code == 415 and "big.png" in r.json()["error"] and disk == []


def _raw(url: str, length: int, sent: bytes = b"", host: str = "127.0.0.1") -> tuple[int, dict, dict]:
    """POST /read announcing `length` body bytes and sending only `sent`: (status, headers, JSON answer)."""
    u = httpx.URL(url)
    with socket.create_connection((u.host, u.port), timeout=60) as sock:
        sock.sendall(f"POST /read HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"
                     "Content-Type: multipart/form-data; boundary=B\r\n\r\n".encode() + sent)
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        return reply.status, dict(reply.getheaders()), json.loads(reply.read())


def test_early_refusals_over_a_socket(reader, photo):
    """A full pool refuses before the body arrives (503, Retry-After); a body that does not all arrive
    within body_timeout is 408; the request limit follows max_bytes (70 MB, one file: 71 MB), not 64 MB."""
    app = create_app(reader, workers=1, queue=0, max_bytes=70 * MB, body_timeout=1)
    with background(app) as url:
        app.state.pool._take(1)
        try:
            status, headers, answer = _raw(url, 10 * MB)  # no byte of the body is ever sent
            assert status == 503 and headers["retry-after"] == "2" and answer["error"].startswith("busy")
        finally:
            app.state.pool._give()
        status, _, answer = _raw(url, 69 * MB, b"--B\r\n")  # under the limit; then the client stalls
        assert status == 408 and answer["error"] == "the request body did not arrive within 1 s"
        assert _raw(url, 72 * MB)[2]["error"] == "the request is 72 MB, over the 71 MB limit"
        assert httpx.post(url + "read", files={"image": ("a.png", photo)}, timeout=60).status_code == 200


def test_connection_limit(reader):
    """uvicorn's limit_concurrency: with 2 connections open, a 3rd gets 503 (limit 3)."""
    with background(create_app(reader, workers=1, queue=0), limit_concurrency=3) as url:
        u = httpx.URL(url)
        held = [http.client.HTTPConnection(u.host, u.port, timeout=30) for _ in range(2)]
        for conn in held:  # answered, and kept open (keep-alive)
            conn.request("GET", "/health")
            reply = conn.getresponse()
            assert reply.status == 200 and reply.read()
        assert httpx.get(url + "health", timeout=30).status_code == 503
        for conn in held:
            conn.close()


def test_loopback_server_answers_only_to_its_names(reader):
    from digitdet.serve.server import LOOPBACK_HOSTS, allowed_hosts_for

    assert allowed_hosts_for("0.0.0.0") is None and allowed_hosts_for("192.168.1.5") is None
    assert all(allowed_hosts_for(h) == LOOPBACK_HOSTS for h in ("127.0.0.1", "::1", "localhost", "127.0.1.1"))
    app = create_app(reader, workers=1, queue=0, allowed_hosts=LOOPBACK_HOSTS)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        r = c.get("/health", headers={"host": "example.com"})  # DNS rebinding: a page of example.com
        assert r.status_code == 400 and r.text == "Invalid host header"
        for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"):
            assert c.get("/health", headers={"host": host}).status_code == 200, host


def test_photo_over_the_budget_is_read_smaller_boxes_in_its_pixels(checkpoint, tmp_path, monkeypatch):
    """predict.max_pixels 20000 (loaded at 20000 px, or 5000 for a data.upsample: 2 checkpoint): the
    detector gets the smaller image, the answer's boxes are in the upload's 400x300 pixels."""
    ckpt = torch.load(checkpoint[1], map_location="cpu", weights_only=False)
    ckpt["config"]["data"]["upsample"] = 2
    torch.save(ckpt, tmp_path / "up2.pt")
    big = encoded(Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)))
    for path, load in ((checkpoint[1], 20_000), (tmp_path / "up2.pt", 5_000)):
        reader = Reader(path, overrides=("predict.read_thresh=0.0", "predict.max_pixels=20000"))
        seen = []

        def detect(tensor, size, seen=seen):  # a stand-in detector: one digit 3 at a known place of its input
            seen.append(size)
            return {"boxes": torch.tensor([[10.0, 20.0, 30.0, 40.0]]), "scores": torch.tensor([0.9]),
                    "labels": torch.tensor([4])}

        monkeypatch.setattr(reader, "_detect", detect)  # what read_image runs on the decoded image
        with TestClient(create_app(reader, workers=1, queue=0)) as c:
            got = c.post("/read", files={"image": ("big.png", big)}).json()
        w, h = fit_size((400, 300), load)
        assert seen == [(w, h)] and (got["width"], got["height"], got["number"]) == (400, 300, "3"), (path, seen)
        sx, sy = 400 / w, 300 / h
        assert got["digits"][0]["box"] == pytest.approx([10 * sx, 20 * sy, 30 * sx, 40 * sy], abs=0.06)


def test_full_pool_answers_503_then_serves_again(reader, photo):
    with TestClient(create_app(reader, workers=1, queue=1)) as c:
        pool = c.app.state.pool
        pool._take(pool.capacity)  # every slot held, as by slow requests in flight
        try:
            r = c.post("/read", files={"image": ("a.png", photo)})
            assert r.status_code == 503 and r.json()["error"].startswith("busy")
        finally:
            for _ in range(pool.capacity):
                pool._give()
        assert c.post("/read", files={"image": ("a.png", photo)}).status_code == 200
        assert pool.in_flight == 0


def test_a_slow_read_fills_the_pool_for_real(reader, photo, monkeypatch):
    """workers=1, queue=0: while one read runs, a second request is refused at once (not queued)."""
    started, release = threading.Event(), threading.Event()
    real = app_mod._read_one

    def slow(*args):
        started.set()
        release.wait(30)
        return real(*args)

    monkeypatch.setattr(app_mod, "_read_one", slow)
    with background(create_app(reader, workers=1, queue=0)) as url, ThreadPoolExecutor(1) as ex:
        first = ex.submit(httpx.post, url + "read", files={"image": ("a.png", photo)}, timeout=60)
        assert started.wait(30)
        second = httpx.post(url + "read", files={"image": ("b.png", photo)}, timeout=30)
        assert second.status_code == 503 and "busy" in second.json()["error"]
        assert httpx.get(url + "health").json()["in_flight"] == 1
        release.set()
        assert first.result().status_code == 200
        assert httpx.post(url + "read", files={"image": ("c.png", photo)}, timeout=30).status_code == 200


def test_header_refusals_do_not_wait_for_a_worker(reader, photo, monkeypatch):
    """workers=1, queue=1, the worker busy: a bomb is refused at once from its header, not queued."""
    started, release = threading.Event(), threading.Event()
    real = app_mod._read_one
    monkeypatch.setattr(app_mod, "_read_one", lambda *a: started.set() or release.wait(60) and real(*a))
    with background(create_app(reader, workers=1, queue=1)) as url, ThreadPoolExecutor(1) as ex:
        first = ex.submit(httpx.post, url + "read", files={"image": ("a.png", photo)}, timeout=90)
        assert started.wait(30)
        try:
            bomb = httpx.post(url + "read", files={"image": ("bomb.png", BOMB)}, timeout=30)
            assert bomb.status_code == 413 and "pixels per byte" in bomb.json()["error"] and not first.done()
        finally:
            release.set()
        assert first.result().status_code == 200


def test_pool_admits_all_or_nothing(reader):
    pool = ReaderPool(reader, workers=1, queue_size=2)
    with pytest.raises(PoolBusy, match="busy"):
        pool.submit_all(lambda r, x: x, [(i,) for i in range(4)])
    assert pool.in_flight == 0
    assert [f.result() for f in pool.submit_all(lambda r, x: x * 2, [(1,), (2,), (3,)])] == [2, 4, 6]
    pool.close()


def test_concurrent_reads_over_a_socket_agree(reader, photo):
    """40 reads from 8 clients through 2 workers (threads sharing one model): all 200, all the same reading."""
    with background(create_app(reader, workers=2, queue=8)) as url:
        def one(_):
            return httpx.post(url + "read", files={"image": ("a.png", photo)}, timeout=120)

        with ThreadPoolExecutor(8) as ex:
            replies = list(ex.map(one, range(40)))
        assert [r.status_code for r in replies] == [200] * 40
        readings = {json.dumps({k: r.json()[k] for k in ("number", "digits", "candidates")}) for r in replies}
        assert len(readings) == 1
        assert httpx.get(url + "health").json()["in_flight"] == 0


def test_cli_errors_are_one_line(checkpoint, capsys):
    held = bind("127.0.0.1", 0)
    try:
        port = held.getsockname()[1]
        assert main(["serve", "--port", str(port), "--checkpoint", str(checkpoint[1])]) == 2
        assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err
    finally:
        held.close()
    assert main(["serve", "--port", "0", "--checkpoint", str(checkpoint[1].parent / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert main(["serve", "--port", "0", "--workers", "0"]) == 2
    assert main(["serve", "--port", "0", "not_an_override"]) == 2
    for flag in ("--max-mb", "--max-connections", "--body-timeout"):  # checked before the model loads
        assert main(["serve", "--port", "0", flag, "0", "--checkpoint", str(checkpoint[1].parent / "missing.pt")]) == 2
        assert f"{flag} must be at least 1 (got 0)" in capsys.readouterr().err


def test_cli_serves_until_stopped(checkpoint, photo):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "digitdet.cli", "-q", "serve", "--port", "0", "--workers", "1",
                             "--checkpoint", str(checkpoint[1])], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        assert "best.pt" in line and "1 worker" in line
        url = found.group(1)
        assert httpx.get(url + "health", timeout=30).json()["status"] == "ok"
        assert httpx.post(url + "read", files={"image": ("a.png", photo)}, timeout=60).status_code == 200
        foreign = httpx.get(url + "health", headers={"host": "example.com"}, timeout=30)  # bound to loopback
        assert foreign.status_code == 400 and foreign.text == "Invalid host header"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    assert rc == 0 and "stopped" in proc.stderr.read()
