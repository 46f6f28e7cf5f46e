"""The results writers of the studies: tables of rows (Markdown with each column's best value in bold, and
CSV) and the ablation report (results.md, results.csv, results.png, curves.png) in a runs folder."""

from __future__ import annotations

import csv
import io as _io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitdet import io
from digitdet.errors import DigitdetError
from digitdet.metrics import STAT_NAMES


# ----------------------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: str = "{:.3f}"
    best: str | None = "max"  # "max", "min", or None: not marked


COLUMNS = [
    Column("variant", "variant", "{}", None),
    *(Column(name, name) for name in STAT_NAMES),
    Column("number_accuracy", "number acc."),
    Column("train_minutes", "train min", "{:.1f}", "min"),
    Column("infer_images_per_s", "infer img/s", "{:.1f}", "max"),
    Column("epochs", "epochs", "{}", None),
    Column("changes", "changes vs base", "{}", None),
]


def defined(value) -> bool:
    """False for missing values and COCO's -1 ('no ground truth in this size range')."""
    if value is None or isinstance(value, str):
        return value is not None
    return math.isfinite(value) and value >= 0


def format_cell(value, col: Column) -> str:
    if not defined(value):
        return "n/a"
    return col.fmt.format(value)


def best_cells(rows: Sequence[dict], col: Column) -> set[int]:
    """Row indices showing the best value of `col` (ties as displayed all count); none when every row
    ties or fewer than two rows have a value."""
    if col.best is None:
        return set()
    values = [(i, r.get(col.key)) for i, r in enumerate(rows) if defined(r.get(col.key))]
    if len(values) < 2:
        return set()
    pick = max if col.best == "max" else min
    top = format_cell(pick(v for _, v in values), col)
    best = {i for i, v in values if format_cell(v, col) == top}
    return set() if len(best) == len(rows) else best  # all tied: nothing stands out


def markdown_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """A markdown table, one line per row; each column's best value in **bold**; 'n/a' where undefined."""
    best = {c.key: best_cells(rows, c) for c in columns}
    text = {c.key for c in columns if rows and all(isinstance(r.get(c.key), str) for r in rows)}
    lines = ["| " + " | ".join(c.header for c in columns) + " |",
             "|" + "|".join("---" if c.key in text else "---:" for c in columns) + "|"]
    for i, row in enumerate(rows):
        cells = []
        for c in columns:
            text = format_cell(row.get(c.key), c).replace("|", "\\|")
            cells.append(f"**{text}**" if i in best[c.key] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """The same numbers as CSV (column keys as the header; empty where undefined)."""
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.key for c in columns])
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c.key)
            cells.append("" if not defined(v) else (round(v, 6) if isinstance(v, float) else v))
        writer.writerow(cells)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------- report
def write_report(out: Path, rows: list[dict], context: dict) -> None:
    """RUNS/results.md, results.csv, results.png and curves.png from the rows so far."""
    io.write_text(out / "results.csv", csv_table(rows, COLUMNS))
    plot_results(rows, out / "results.png")
    histories = {r["variant"]: _history(out / r["variant"]) for r in rows if not r.get("eval_only")}
    plot_curves({k: h for k, h in histories.items() if h}, out / "curves.png")
    io.write_text(out / "results.md", results_markdown(rows, context))


def results_markdown(rows: list[dict], context: dict) -> str:
    images = rows[0].get("images", "?") if rows else "?"
    timed = sorted({r.get("speed_images") for r in rows if not r.get("eval_only")} - {None})
    budget = ", ".join(context.get("overrides", [])) or "as in the configs"
    where = f"{rows[0].get('device', 'cpu')}, {rows[0].get('threads', os.cpu_count())} threads" if rows else ""
    return "\n".join([
        "# Ablation results",
        "",
        f"Base: {', '.join(f'`{b}`' for b in context.get('base', []))}; data `{context.get('data')}`; "
        f"seed {context.get('seed')} for every variant; budget and overrides: `{budget}`.",
        f"Scores on the whole valid split ({images} images) from each variant's best.pt, reading threshold "
        f"tuned on validation (a predict-only variant uses the baseline's weights). Inference images/s "
        f"({where}, image decoding included): over the first {'/'.join(map(str, timed)) or '–'} valid images "
        "for a trained variant, over the whole split for a predict-only one. Best value per column in "
        "**bold** (fewest train minutes, highest otherwise); n/a = no ground truth in that size range.",
        "",
        markdown_table(rows, COLUMNS),
        "![AP, AP50 and number accuracy per variant](results.png)",
        "",
        "![learning curves](curves.png)",
        "",
    ])


def _history(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DigitdetError(f"{path}:{no}: not a JSON line ({exc.msg}); the run's log is damaged") from None
    return out


def _value(v) -> float:
    return float(v) if defined(v) else float("nan")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_results(rows: list[dict], path: Path) -> None:
    """Grouped bars: AP, AP50 and number accuracy per variant, values printed on the bars."""
    plt = _pyplot()
    keys = [("AP", "AP"), ("AP50", "AP50"), ("number_accuracy", "number accuracy")]
    x = np.arange(len(rows))
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.3 * len(rows) + 2), 4.2), dpi=100)
    top = np.nanmax([_value(r.get(k)) for r in rows for k, _ in keys] + [0.0])
    digits = 3 if top < 0.1 else 2
    for k, (key, label) in enumerate(keys):
        values = [_value(r.get(key)) for r in rows]
        bars = ax.bar(x + (k - (len(keys) - 1) / 2) * width, np.nan_to_num(values), width, label=label)
        ax.bar_label(bars, labels=[f"{v:.{digits}f}" if math.isfinite(v) else "n/a" for v in values],
                     fontsize=7, padding=1)
    ax.set_xticks(x, [r["variant"] + (" *" if r.get("eval_only") else "") for r in rows], rotation=20, ha="right")
    ax.set_ylim(0, min(1.1, max(0.05, 1.2 * top)))  # small values stay readable
    if any(r.get("eval_only") for r in rows):
        ax.text(1.0, -0.25, "* predict-only: the baseline's weights", transform=ax.transAxes, ha="right",
                fontsize=8)
    ax.set_ylabel("valid split")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("digitdet ablation: AP, AP50 and number accuracy per variant")
    fig.tight_layout()
    io.save_figure(path, fig)
    plt.close(fig)


def plot_curves(histories: dict[str, list[dict]], path: Path) -> None:
    """Validation mAP and training loss per epoch, and validation mAP against training minutes."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), dpi=100)
    for name, hist in histories.items():
        epochs = [h["epoch"] + 1 for h in hist]
        ap = [_value(h["val"].get("AP")) for h in hist]
        (line,) = axes[0].plot(epochs, ap, "o-", label=name)
        axes[1].plot(epochs, [h["train"]["loss"] for h in hist], "o-", color=line.get_color(), label=name)
        axes[2].plot([h["train_seconds"] / 60 for h in hist], ap, "o-", color=line.get_color(), label=name)
    for ax, (xlabel, ylabel) in zip(axes, [("epoch", "val mAP"), ("epoch", "train loss"),
                                           ("training minutes", "val mAP")]):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    last = max((h["epoch"] + 1 for hist in histories.values() for h in hist), default=1)
    for ax in axes[:2]:
        ax.set_xlim(0.5, last + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=min(last, 10), integer=True, min_n_ticks=1))
    axes[0].set_ylim(bottom=0)
    axes[2].set_ylim(bottom=0)
    if histories:
        axes[0].legend(fontsize=8)
    fig.suptitle("learning curves (val mAP on train.val_limit images per epoch)")
    fig.tight_layout()
    io.save_figure(path, fig)
    plt.close(fig)
