"""`digitdet ablate`: train config variants with the same seed and budget, evaluate each on the whole
validation split, and tabulate them.

A variant is a small YAML delta (configs/ablations/*.yaml) merged over the --base config(s); its name is
the file's stem and its run folder RUNS/<name>/. The base itself is the first row, 'baseline'. A variant
that changes only `predict` settings (NMS, thresholds, duplicate suppression) needs no training: it is
evaluated from the baseline's weights, with the reading threshold re-tuned on validation as training
would have done (unless the variant sets it).

RUNS/<name>/result.json, written atomically last with the variant's merged config, marks it finished:
running again skips it unless `force` or its config changed (another budget, say). A variant interrupted
in training resumes from its last.pt when its config is unchanged.
Outputs: RUNS/results.md and results.csv (best value per column in bold), results.png (AP, AP50 and
number accuracy per variant) and curves.png (the learning curves overlaid).
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from digitdet import io
from digitdet.config import Config, load_config
from digitdet.errors import DigitdetError
from digitdet.metrics import STAT_NAMES
from digitdet.model.checkpoint import model_from_checkpoint
from digitdet.reading import numbers
from digitdet.studies.errors import default_device, open_split, timed_inference
from digitdet.training.evaluate import score_detections
from digitdet.training.fit import fit

BASELINE = "baseline"
RESULT = "result.json"
_RUN_FILES = ("result.json", "train_summary.json", "best.pt", "last.pt", "metrics.jsonl", "curve.png",
              "config.yaml")


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


# ----------------------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    name: str
    cfg: Config
    changes: str  # 'section.key=value; ...' relative to the base
    eval_only: bool  # differs from the base in `predict` only: evaluated from the baseline's weights


def config_changes(cfg: Config, base: Config) -> list[tuple[str, str, object]]:
    """[(section, key, value)] where `cfg` differs from `base`."""
    a, b = cfg.to_dict(), base.to_dict()
    return [(s, k, v) for s in a for k, v in a[s].items() if b[s].get(k) != v]


def make_variants(base: Sequence[str | Path], deltas: Sequence[str | Path], overrides: Sequence[str]) -> list[Variant]:
    """The baseline (the base configs + overrides) and one Variant per delta file, in order."""
    base_cfg = load_config(base, overrides)
    out = [Variant(BASELINE, base_cfg, "(base config)", False)]
    for delta in deltas:
        name = Path(delta).stem
        if name in {v.name for v in out}:
            what = "is reserved for the base config" if name == BASELINE else "is given twice"
            raise DigitdetError(f"{delta}: variant name {name!r} {what} (names are file stems)")
        cfg = load_config([*base, delta], overrides)
        diff = config_changes(cfg, base_cfg)
        text = "; ".join(f"{s}.{k}={json.dumps(v, separators=(',', ':'))}" for s, k, v in diff)
        # A delta that changes nothing (e.g. nms05.yaml over a base already at 0.5) is the baseline again:
        # evaluated from its weights rather than trained a second time.
        eval_only = all(s == "predict" for s, _, _ in diff)
        out.append(Variant(name, cfg, text or "(none: same as the base)", eval_only))
    return out


def _same_config(run: Path, cfg: Config) -> bool:
    """Whether the run folder was trained with `cfg`. An unreadable config.yaml is an error, never a
    reason to clear the run: the caller would delete finished work to retrain it."""
    if not (run / "config.yaml").is_file():
        return False
    try:
        return load_config([run / "config.yaml"]) == cfg
    except DigitdetError as exc:
        raise DigitdetError(f"{run}: its config.yaml cannot be read ({exc}); nothing was deleted: fix the "
                            "file, or remove the run folder to retrain it") from None


def _clear(run: Path) -> None:
    for name in _RUN_FILES:
        (run / name).unlink(missing_ok=True)


def train_variant(cfg: Config, data_dir, run: Path, *, progress: bool) -> tuple[dict, str]:
    """(train summary, how): 'trained', 'resumed' (from last.pt) or 'reused' (training had finished)."""
    if (run / "train_summary.json").is_file() and (run / "best.pt").is_file() and _same_config(run, cfg):
        return json.loads((run / "train_summary.json").read_text(encoding="utf-8")), "reused"
    if (run / "last.pt").is_file() and _same_config(run, cfg):
        return fit(cfg, data_dir, run, resume=True, progress=progress), "resumed"
    _clear(run)
    return fit(cfg, data_dir, run, progress=progress), "trained"


def _load(checkpoint: Path, overrides: Sequence[str], data_dir, limit: int | None):
    """(cfg, model warmed up on one image, valid split): the first variant is not timed slower."""
    device = default_device()
    cfg, model, _ = model_from_checkpoint(checkpoint, tuple(overrides), device=device)
    split = open_split(data_dir, "valid", cfg, limit=limit)
    if len(split.dataset):
        with torch.inference_mode():
            model([split.dataset[0][0].to(device)])
    return cfg, model, split, device


def evaluate_variant(checkpoint: Path, data_dir, *, overrides: Sequence[str] = (), tune: bool = False,
                     progress: bool = True) -> dict:
    """COCO stats, number accuracy and inference images/s of a checkpoint on the whole valid split;
    `tune`: re-tune the reading threshold there first (as fit() does after training)."""
    cfg, model, split, device = _load(checkpoint, overrides, data_dir, None)
    dets, seconds = timed_inference(model, split, cfg, device, progress=progress, desc="eval valid")
    p = cfg.predict
    read_thresh = p.read_thresh
    if tune:
        truth = split.truth([d["image_id"] for d in dets])
        read_thresh, _ = numbers.tune_read_threshold(dets, truth, p.dedup_iou)
    res = score_detections(dets, split.coco, read_thresh=read_thresh, dedup_iou=p.dedup_iou)
    return {**res["coco"], "number_accuracy": res["number_accuracy"], "read_thresh": read_thresh,
            "images": res["images"], "infer_images_per_s": len(dets) / max(seconds, 1e-9),
            "speed_images": len(dets)}


def measure_speed(checkpoint: Path, data_dir, *, images: int | None, progress: bool = True) -> dict:
    """Inference images/s over the first `images` valid images (None: all), decoding included; and the
    number of images in the valid split."""
    cfg, model, split, device = _load(checkpoint, (), data_dir, images)
    dets, seconds = timed_inference(model, split, cfg, device, progress=progress, desc="time valid")
    return {"infer_images_per_s": len(dets) / max(seconds, 1e-9), "speed_images": len(dets),
            "images": len(split.coco.images)}


def run_variant(v: Variant, baseline: Variant, data_dir, out: Path, *, force: bool = False,
                speed_images: int | None = 100, progress: bool = True) -> dict:
    """Train and evaluate one variant; returns its row (also RUNS/<name>/result.json).

    A trained variant's scores are fit()'s own final evaluation of best.pt on the whole valid split
    (train_summary.json, reading threshold tuned there); its speed is timed over the first `speed_images`
    valid images. An eval-only variant is evaluated (and timed) on the whole valid split."""
    run = out / v.name
    result = run / RESULT
    if result.is_file() and not force:
        row = json.loads(result.read_text(encoding="utf-8"))
        old = row.get("config") or {}
        changed = [f"{s}.{k}" for s, keys in v.cfg.to_dict().items() for k, val in keys.items()
                   if old.get(s, {}).get(k) != val]
        if not changed:
            return {**row, "status": "skipped"}
        print(f"ablate: {v.name}: the config changed since it finished ({', '.join(changed)}); redoing it")
    if force:
        _clear(run)
    result.unlink(missing_ok=True)
    if v.eval_only:
        weights = out / BASELINE / "best.pt"
        summary = json.loads((out / BASELINE / "train_summary.json").read_text(encoding="utf-8"))
        base_p = baseline.cfg.predict
        overrides = [f"predict.{k}={val}" for k, val in asdict(v.cfg.predict).items() if getattr(base_p, k) != val]
        tune = v.cfg.predict.read_thresh == base_p.read_thresh  # unless the variant sets it
        if progress:
            print(f"ablate: evaluating {v.name} with the baseline's weights")
        scores = evaluate_variant(weights, data_dir, overrides=overrides, tune=tune, progress=progress)
        status, changes = "evaluated", f"{v.changes} (baseline weights)"
    else:
        summary, status = train_variant(v.cfg, data_dir, run, progress=progress)
        weights, changes = run / "best.pt", v.changes
        scores = {**summary["val"], "number_accuracy": summary["val_number_accuracy"],
                  "read_thresh": summary["read_thresh"],
                  **measure_speed(weights, data_dir, images=speed_images or None, progress=progress)}
    row = {"variant": v.name, **scores, "train_minutes": summary["train_seconds"] / 60,
           "epochs": summary["epochs"], "changes": changes, "weights": str(weights), "eval_only": v.eval_only,
           "threads": torch.get_num_threads(), "device": str(default_device()), "config": v.cfg.to_dict()}
    io.write_json(result, row)  # last: its presence means "finished"
    return {**row, "status": status}


def run_ablation(base: Sequence[str | Path], deltas: Sequence[str | Path], data_dir: str | Path,
                 out_dir: str | Path, *, overrides: Sequence[str] = (), epochs: int | None = None,
                 minutes: float | None = None, images: int | None = None, limit: int | None = None,
                 force: bool = False, speed_images: int | None = 100, progress: bool = True) -> list[dict]:
    """Run the baseline and every delta with the same seed and budget; write the report after each.
    `limit` (smoke tests) trains on the first N images and validates each epoch on N; the final scores
    always cover the whole valid split."""
    if not base:
        raise DigitdetError("ablate: give the base config with --base")
    common = list(overrides)
    if epochs is not None:
        common.append(f"train.epochs={epochs}")
    if minutes is not None:  # equal CPU time: each variant converts the minutes into its own steps
        common += [f"train.max_minutes={minutes}", "train.max_images=null"]
    if images is not None:  # equal images seen
        common += [f"train.max_images={images}", "train.max_minutes=null"]
    if limit is not None:
        common += [f"train.limit={limit}", f"train.val_limit={limit}"]
    variants = make_variants(base, deltas, common)
    out = Path(out_dir)
    rows: list[dict] = []
    for v in variants:
        if progress:
            print(f"ablate: variant {v.name}: {v.changes}")
        rows.append(run_variant(v, variants[0], data_dir, out, force=force, speed_images=speed_images,
                                progress=progress))
        context = {"base": [str(b) for b in base], "data": str(data_dir), "overrides": common,
                   "seed": variants[0].cfg.train.seed}
        write_report(out, rows, context)
    return rows


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
