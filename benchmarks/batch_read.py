"""`digitdet predict` on one machine vs on Ray Data: images/s and peak memory of `--engine local` and
`--engine ray` with 1 and 2 workers, on the same synthetic test images, so the engine's overhead is a
measured number (docs/batch.md quotes the table).

    python benchmarks/batch_read.py                    # 500 images; prints a markdown table
    python benchmarks/batch_read.py --n 40             # a quick look
    python benchmarks/batch_read.py --write-docs       # also writes the table into docs/batch.md (quiet host!)

Each row runs the real command in a fresh process (`python -m digitdet.cli -q predict ...`) twice: on all
the images and on the first `--small` of them, so that start-up (interpreter, model, Ray and its workers)
and steady reading are told apart: steady img/s = (n - small) / (wall(n) - wall(small)). Peak memory is
the largest sum of RSS over the command's whole process tree (driver, Ray's services and workers),
sampled every 0.1 s: shared pages count once per process, so it is an upper bound. Each run's pred.csv is
compared with the local engine's. Timings from a busy host are not comparable: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "batch.md"
BEGIN, END = "<!-- batch_read:begin -->", "<!-- batch_read:end -->"
ROWS = {"local": [], "ray1": ["--engine", "ray", "--workers", "1"], "ray2": ["--engine", "ray", "--workers", "2"]}
LABELS = {"local": "`--engine local`", "ray1": "`--engine ray --workers 1`", "ray2": "`--engine ray --workers 2`"}


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        return re.search(r"model name\s*:\s*(.+)", text).group(1).strip()
    except (OSError, AttributeError):
        return platform.processor() or platform.machine()


def tree_rss_kb(root: int) -> int:
    """RSS (kB) summed over `root` and every process descending from it (from /proc)."""
    parent, rss = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            status = Path(f"/proc/{d}/status").read_text()
        except OSError:
            continue
        parent[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
        m = re.search(r"VmRSS:\s+(\d+)", status)
        rss[int(d)] = int(m.group(1)) if m else 0
    tree, grew = {root}, True
    while grew:
        more = {p for p, pp in parent.items() if pp in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(rss.get(p, 0) for p in tree)


def run(args: list[str], log: Path) -> tuple[float, int]:
    """(wall seconds, peak tree RSS kB) of one command; its output goes to `log`."""
    peak = [0]
    with open(log, "w") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss_kb(proc.pid))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
    if rc != 0:
        raise SystemExit(f"batch_read: {' '.join(args)} exited {rc}; its output: {log}")
    return wall, peak[0]


def make_images(root: Path, n: int, small: int, seed: int) -> tuple[Path, Path]:
    """n synthetic test images (digitdet's generator), and a list file naming the first `small`."""
    from digitdet.data.synth import generate_dataset

    generate_dataset(root / "data", {"test": n}, seed=seed, workers=1, progress=False)
    folder = root / "data" / "test"
    names = sorted((p.name for p in folder.iterdir()), key=lambda s: int(s.split(".")[0]))[:small]
    listing = root / "small.txt"
    listing.write_text("".join(f"{folder / name}\n" for name in names))
    return folder, listing


def table(results: dict, n: int, small: int) -> str:
    lines = ["| engine | wall, n images (s) | images/s, whole command | start-up (s) | images/s, steady | "
             "peak RSS, all processes (MB) | pred.csv = local |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for key, r in results.items():
        steady = (n - small) / max(r["wall"] - r["wall_small"], 1e-9)
        startup = max(r["wall_small"] - small / steady, 0.0)
        lines.append(f"| {LABELS[key]} | {r['wall']:.1f} | {n / r['wall']:.1f} | {startup:.1f} | {steady:.1f} | "
                     f"{r['peak_kb'] / 1024:.0f} | {r['same']} |")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    """The table between the markers of docs/batch.md and of README.md's Ray section (atomic writes)."""
    from digitdet import io

    for doc in (DOC, ROOT / "README.md"):
        body = doc.read_text()
        if BEGIN not in body or END not in body:
            raise SystemExit(f"batch_read: {doc} has no {BEGIN} ... {END} markers")
        head, rest = body.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        io.write_text(doc, f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=500, help="synthetic test images (default 500)")
    p.add_argument("--small", type=int, default=16, help="images of the start-up run (default 16)")
    p.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    p.add_argument("--checkpoint", help="default: the bundled reader")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", help="keep the images and outputs in this folder (default: a temporary one)")
    p.add_argument("--write-docs", action="store_true",
                   help="write the table between the markers of docs/batch.md and README.md")
    a = p.parse_args(argv)
    if not 0 < a.small < a.n:
        raise SystemExit("batch_read: need 0 < --small < --n")
    load_before = os.getloadavg()
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="batch_read."))
    work.mkdir(parents=True, exist_ok=True)
    folder, listing = make_images(work, a.n, a.small, a.seed)
    base = [sys.executable, "-m", "digitdet.cli", "-q", "predict"] + (
        ["--checkpoint", a.checkpoint] if a.checkpoint else [])
    results: dict[str, dict] = {}
    local_csv = None
    try:
        for key in ["local"] + [r for r in a.rows if r != "local"]:  # local first: the reference pred.csv
            out = work / f"out-{key}"
            for d in (out, work / f"small-{key}"):
                shutil.rmtree(d, ignore_errors=True)
            print(f"batch_read: {key} on {a.n} images ...", file=sys.stderr, flush=True)
            wall, peak = run(base + ["--images", str(folder), "--out", str(out), *ROWS[key]], work / f"{key}.log")
            wall_small, _ = run(base + ["--images", str(listing), "--out", str(work / f"small-{key}"), *ROWS[key]],
                                work / f"{key}-small.log")
            csv = (out / "pred.csv").read_text()
            local_csv = csv if key == "local" else local_csv
            if key in a.rows:
                results[key] = {"wall": wall, "wall_small": wall_small, "peak_kb": peak,
                                "same": "reference" if key == "local" else ("yes" if csv == local_csv else "NO")}
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    import ray
    import torch

    when = datetime.date.today().isoformat()
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    commit = git.stdout.strip() or "an unknown commit"
    load = f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    text = (f"Measured {when} at {commit} on {cpu_name()} ({os.cpu_count()} cores; 1-minute load average {load}), "
            f"torch "
            f"{torch.__version__}, Ray {ray.__version__}: {a.n} synthetic test images (seed {a.seed}), the "
            f"{'bundled reader' if not a.checkpoint else a.checkpoint}; the local engine with torch's default "
            f"{torch.get_num_threads()} threads, each Ray worker with 1; start-up from a run on {a.small} of them.\n"
            f"`python benchmarks/batch_read.py --n {a.n}{' --small ' + str(a.small) if a.small != 16 else ''}`\n\n"
            + table(results, a.n, a.small))
    print(text)
    if a.write_docs:
        write_docs(text)
        print(f"batch_read: table written into {DOC} and README.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
