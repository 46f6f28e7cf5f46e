"""Publish a finished `scripts/study.sh` run: copy its reports into docs/results/ and rewrite the generated
section of docs/results.md ("The report's three studies") from them, so the section is never edited by hand.

    python scripts/readme_results.py RUNS docs/results.md docs/results --minutes M

RUNS holds ablate/ (results.md, results.csv, results.png, curves.png), sweep/ (sweep.md, sweep.csv and
galleries) and errors/ (errors.md and galleries). The page gets each report's text up to its first
'## ' heading (the tables and the two ablation charts), with links relative to the page (`results/...`
from docs/results.md); the galleries stay in docs/results/*.md. Only the lines between the two markers
change; a page without them is an error. (The name is historical: the section lived in README.md until
2026-12-02.)
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import sys
from pathlib import Path

BEGIN = "<!-- results:begin (written by scripts/readme_results.py from a real run: do not edit by hand) -->"
END = "<!-- results:end -->"
# (run subfolder, report file, name in docs/results, heading on the page): results.md becomes ablation.md
REPORTS = [("ablate", "results.md", "ablation.md", "Ablation (`digitdet ablate`)"),
           ("sweep", "sweep.md", "sweep.md", "Post-processing sweep (`digitdet sweep`)"),
           ("errors", "errors.md", "errors.md", "Wrongly read numbers (`digitdet errors`)")]
_LOCAL_LINK = re.compile(r"\]\(([\w.\-]+\.(?:png|md|csv))\)")


def lead(md: str, docs: str) -> str:
    """A report's text without its '# ' title, up to its first '## ' section, links pointing into `docs`."""
    lines = md.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    cut = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    text = "\n".join(lines[:cut]).strip()
    return _LOCAL_LINK.sub(lambda m: f"]({docs}/{m.group(1)})", text)


def splice(page: str, section: str) -> str:
    """`page` with everything between BEGIN and END replaced by `section`."""
    if page.count(BEGIN) != 1 or page.count(END) != 1 or page.index(BEGIN) > page.index(END):
        raise ValueError("expected the results markers once each, begin before end")
    head, rest = page.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{section.strip()}\n{END}{tail}"


def machine() -> str:
    import torch

    from digitdet.model.onnx_runtime import cpu_cores, cpu_name

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu_cores()} CPU cores ({cpu_name()}), {gpu}, torch {torch.__version__}"


def publish(runs: Path, page: Path, docs: Path, minutes: float | None) -> None:
    """Copy the reports of `runs` into `docs` and rewrite the marked section of `page` (docs/results.md)."""
    from digitdet import io

    missing = [str(runs / sub / name) for sub, name, _, _ in REPORTS if not (runs / sub / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)}: not found (run scripts/study.sh first)")
    page_text = page.read_text(encoding="utf-8")
    splice(page_text, "")  # markers checked before anything is written
    rel = Path(os.path.relpath(docs, page.parent)).as_posix()
    parts = []
    with io.atomic_dir(docs) as tmp:
        for sub, name, new, title in REPORTS:
            src = runs / sub / name
            for f in src.parent.iterdir():  # the report's charts, galleries and csv
                if f.suffix in {".png", ".csv"}:
                    shutil.copy2(f, tmp / ("ablation.csv" if f.name == "results.csv" else f.name))
            text = src.read_text(encoding="utf-8").replace("](results.csv)", "](ablation.csv)")
            (tmp / new).write_text(text, encoding="utf-8")
            parts.append(f"### {title}\n\n{lead(text, rel)}\n\nThe whole report, galleries included: "
                         f"[{rel}/{new}]({rel}/{new}).")
    took = f"; `bash scripts/study.sh` took {minutes:g} min" if minutes is not None else ""
    header = (f"Measured {datetime.date.today().isoformat()} on {machine()}{took}. Paths below are the run's "
              f"own (`runs/study/`); the reports are copied to [{rel}/]({rel}/).")
    io.write_text(page, splice(page_text, "\n\n".join([header, *parts])))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("runs", type=Path)
    p.add_argument("page", type=Path, help="the page with the markers: docs/results.md")
    p.add_argument("docs", type=Path)
    p.add_argument("--minutes", type=float)
    a = p.parse_args(argv)
    try:
        publish(a.runs, a.page, a.docs, a.minutes)
    except (OSError, ValueError) as exc:
        print(f"readme_results: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
