"""Load on `digitdet serve`: N concurrent clients POST one photo to /read on loopback for a bounded number
of requests or time; prints a markdown table (date, host CPU, load average, requests/s, p50/p95/max
latency, errors, the server's peak RSS). Exit status 1 when any request failed, any hostile request got
another answer than expected, or the server died.

    python benchmarks/serve_load.py --checkpoint runs/demo/best.pt --photo ../shared/real_plaques/images/2.jpg \\
        --clients 8 --requests 40
    python benchmarks/serve_load.py --url http://127.0.0.1:8000/ --seconds 30   # a server already running
    python benchmarks/serve_load.py --url http://127.0.0.1:18765/ --pid 1234   # ... and its peak RSS
    python benchmarks/serve_load.py --clients 4 --requests 24 --hostile 2      # beside hostile clients

--hostile N (serve_hostile.py; loopback only): first every hostile request alone, in turn (its answer, time
and the growth of the server's peak RSS), then N threads send them all --rounds times beside the good
clients; the good clients' errors must stay 0. Without --url it starts `digitdet serve --port 0` itself
(a separate process, so its peak RSS is the server's own: VmHWM from /proc, Linux only) with the defaults
and stops it afterwards. Latency is per request, client side: upload, queueing, decoding, reading and the
answer. A request answered 503 (busy) counts as an error. Timings are indicative where other work shares
the CPUs (the load average is printed).
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import serve_hostile as hostile_mod
from serve_hostile import multipart

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = ROOT.parent / "shared" / "real_plaques" / "images" / "2.jpg"


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.+)", text)
        return f"{model.group(1).strip() if model else platform.processor()} ({os.cpu_count()} CPUs)"
    except OSError:
        return f"{platform.processor() or platform.machine()} ({os.cpu_count()} CPUs)"


def mb(kb: int | None) -> str:
    return "n/a" if not kb else f"{kb / 1024:.0f} MB"


def start_server(a) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "digitdet.cli", "-q", "serve", "--port", "0", "--workers", str(a.workers),
           "--queue", str(a.queue)]
    if a.checkpoint:
        cmd += ["--checkpoint", a.checkpoint]
    cmd += a.override
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    found = re.search(r"(http://\S+/)", line)
    if not found:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    print(line.strip(), file=sys.stderr)
    return proc, found.group(1)


def client(url: str, body: bytes, ctype: str, take, results: list, lock: threading.Lock) -> None:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    while take():
        t0 = time.perf_counter()
        try:
            conn.request("POST", u.path + "read", body=body, headers={"Content-Type": ctype})
            reply = conn.getresponse()
            reply.read()
            status = reply.status
        except (OSError, http.client.HTTPException) as exc:
            status = type(exc).__name__
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
        with lock:
            results.append((time.perf_counter() - t0, status))
    conn.close()


def health(url: str) -> dict | None:
    """The server's /health JSON, None when it does not answer 200."""
    u = urllib.parse.urlsplit(url)
    try:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request("GET", u.path + "health")
        reply = conn.getresponse()
        return json.loads(reply.read()) if reply.status == 200 else None
    except (OSError, ValueError):
        return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running server (default: start one with --checkpoint)")
    p.add_argument("--pid", type=int, help="with --url: the server's process id, for its peak RSS")
    p.add_argument("--checkpoint", help="for the server started here (default: the bundled reader)")
    p.add_argument("--photo", default=str(DEFAULT_PHOTO), help="the image every request sends")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=40, help="stop after this many requests (all clients)")
    p.add_argument("--seconds", type=float, help="or after this long (whichever comes first)")
    p.add_argument("--workers", type=int, default=2, help="the started server's --workers")
    p.add_argument("--queue", type=int, default=16, help="the started server's --queue")
    p.add_argument("--override", action="append", default=[], metavar="section.key=value",
                   help="a config override for the started server (repeatable), e.g. predict.max_pixels=4000000")
    p.add_argument("--hostile", type=int, default=0, help="hostile client threads (serve_hostile.py; 0: none)")
    p.add_argument("--rounds", type=int, default=1, help="with --hostile: every hostile request this many times")
    a = p.parse_args()

    data = Path(a.photo).read_bytes()
    body, ctype = multipart(Path(a.photo).name, data)
    if a.hostile and a.url:
        hostile_mod.check_loopback(a.url)
    kinds = hostile_mod.kinds() if a.hostile else []
    proc, url = (None, a.url) if a.url else start_server(a)
    if not url.endswith("/"):
        url += "/"
    pid = proc.pid if proc else a.pid
    probe_rows, mixed, highest = [], [], 0
    try:
        client(url, body, ctype, iter([True, False]).__next__, [], threading.Lock())  # warm-up, not counted
        idle = hostile_mod.rss_kb(pid, "VmRSS")
        if kinds:
            probe_rows, highest = hostile_mod.probe(url, pid, kinds)
            hostile_mod.reset_peak(pid)  # the mixed run's own peak from here
        results: list = []
        lock = threading.Lock()
        left = [a.requests]
        deadline = time.monotonic() + a.seconds if a.seconds else float("inf")
        todo = kinds * a.rounds
        random.Random(0).shuffle(todo)

        def take_hostile():
            with lock:
                return todo.pop() if todo else None

        def take() -> bool:
            with lock:
                if left[0] <= 0 or time.monotonic() > deadline:
                    return False
                left[0] -= 1
                return True

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(url, body, ctype, take, results, lock))
                   for _ in range(a.clients)]
        bad = [threading.Thread(target=hostile_mod.client, args=(url, take_hostile, mixed, lock))
               for _ in range(a.hostile)]
        for t in threads + bad:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        for t in bad:
            t.join()
        ok = health(url)
        peak = hostile_mod.rss_kb(pid)
    finally:
        if proc:
            proc.terminate()
            proc.wait(30)

    if not results:
        print("no request was made", file=sys.stderr)
        return 1
    times = sorted(t * 1000 for t, s in results)
    errors = sum(s != 200 for _, s in results)
    q = statistics.quantiles(times, n=20, method="inclusive") if len(times) > 1 else times * 19
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    img = f"{Path(a.photo).name} ({len(data) / 1024:.0f} kB)"
    model = ok["model"] if ok else "?"
    print(f"## digitdet serve under load, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}\n")
    print(f"host: {cpu_name()}, load average (1/5/15 min) after the run: {load}; model: {model}; photo: {img}; "
          f"server RSS idle after a warm-up read: {mb(idle)}\n")
    if probe_rows:
        print(hostile_mod.PROBE_HEAD, *probe_rows, "", sep="\n")
    with_hostile = f" (beside {a.hostile} hostile)" if a.hostile else ""
    print(f"| server workers | good clients{with_hostile} | requests | errors | requests/s | p50 ms | p95 ms | "
          "max ms | server peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    workers = ok["workers"] if ok else "?"
    print(f"| {workers} | {a.clients} | {len(results)} | {errors} | {len(results) / wall:.2f} | {q[9]:.0f} | "
          f"{q[18]:.0f} | {times[-1]:.0f} | {mb(peak)} |")
    if mixed:
        print("", hostile_mod.MIX_HEAD, *hostile_mod.summary(mixed), sep="\n")
        whole = mb(max(highest, peak or 0))
        print(f"\nserver peak RSS over the whole run (the hostile requests alone included): {whole}")
    print(f"\nserver alive afterwards: {'yes' if ok else 'NO'}")
    if errors:
        print(f"errors: {sorted({str(s) for _, s in results if s != 200})}", file=sys.stderr)
    unexpected = [r for r in mixed if r[2] != r[1]] + [r for r in probe_rows if "**NO**" in r]
    return 0 if ok and not errors and results and not unexpected else 1


if __name__ == "__main__":
    sys.exit(main())
