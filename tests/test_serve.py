"""`digitdet serve`: every route and bad input in-process (FastAPI's TestClient), the bounded pool (503 when
full, all-or-nothing admission), concurrent reads over a real socket, and the CLI (start-up line, errors)."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from digitdet.cli import main
from digitdet.reading.reader import Reader
from digitdet.serve import app as app_mod
from digitdet.serve import create_app
from digitdet.serve.pool import PoolBusy, ReaderPool
from digitdet.serve.server import background, bind
from tiny import train_tiny

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
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["model"].endswith("best.pt")
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
    with TestClient(create_app(reader, workers=1, queue=0, max_request_bytes=4000)) as c:
        big = c.post("/read", files={"image": ("a.png", b"x" * 5000)})  # Content-Length says so: not read
        assert big.status_code == 413 and "limit" in big.json()["error"]
        body = encoded(Image.new("RGB", (64, 64)))  # small, accepted
        assert c.post("/read", files={"image": ("a.png", body)}).status_code == 200
        chunks = iter([b"--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n",
                       *[b"y" * 1000] * 6, b"\r\n--B--\r\n"])  # chunked: no Content-Length
        r = c.post("/read", content=chunks, headers={"content-type": "multipart/form-data; boundary=B"})
        assert r.status_code == 413 and "limit" in r.json()["error"]
        assert c.get("/health").status_code == 200


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


def test_pool_admits_all_or_nothing(reader):
    pool = ReaderPool(reader, workers=1, queue_size=2)
    with pytest.raises(PoolBusy, match="busy"):
        pool.submit_all(lambda r, x: x, [(i,) for i in range(4)])
    assert pool.in_flight == 0
    assert [f.result() for f in pool.submit_all(lambda r, x: x * 2, [(1,), (2,), (3,)])] == [2, 4, 6]
    pool.close()


def test_concurrent_reads_over_a_socket_agree(reader, photo):
    """40 reads from 8 clients through 2 workers (each its own model copy): all 200, all the same reading."""
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
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    assert rc == 0 and "stopped" in proc.stderr.read()
