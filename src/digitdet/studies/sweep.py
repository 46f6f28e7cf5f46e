"""`digitdet sweep`: post-processing thresholds studied from one checkpoint, without retraining.

Parameters (values in [0, 1]):
- nms:   the detector's per-class box NMS IoU (predict.nms_thresh): one inference per value, run with a
         low score threshold so the other settings can be applied afterwards;
- score: the pred.json score threshold (predict.score_thresh): drops detections (COCO AP, and the reading
         when above the reading threshold);
- read:  the reading threshold (predict.read_thresh);
- dedup: the class-agnostic duplicate suppression IoU before reading (predict.dedup_iou; 1.0 = off).
Each value changes one parameter of the checkpoint's own setting, the first row. Per row: COCO AP/AP50,
number accuracy (with and without duplicate suppression), how many images read more digits than the
truth (duplicates/extra), fewer (misses) or the right count but wrong digits, and against the
checkpoint's setting how many images gain or lose digits, change, get fixed or broken. Example images
whose reading changes are drawn per value (sweep_<param>_<value>.png), and the images the duplicate
suppression fixes at the checkpoint's setting (the report's "117 -> 1117") in sweep_dedup_off.png.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from digitdet import io
from digitdet.errors import DigitdetError
from digitdet.model.build import set_postprocess
from digitdet.reading import numbers
from digitdet.studies.errors import (
    CELL,
    Split,
    default_device,
    digits,
    number_panel,
    open_split,
    short,
    timed_inference,
)
from digitdet.studies.results import Column, csv_table, markdown_table
from digitdet.training.evaluate import score_detections
from digitdet.viz import save_gallery

PARAMS = {"nms": "nms_thresh", "score": "score_thresh", "read": "read_thresh", "dedup": "dedup_iou"}
SCORE_FLOOR = 0.05  # inference score threshold while sweeping (lower if a swept score value is lower)

COLUMNS = [
    Column("setting", "setting", "{}", None),
    Column("AP", "AP"),
    Column("AP50", "AP50"),
    Column("number_accuracy", "number acc."),
    Column("accuracy_no_dedup", "acc. w/o dedup"),
    Column("correct", "correct", "{}"),
    Column("extra", "extra digits", "{}", "min"),
    Column("missing", "missing digits", "{}", "min"),
    Column("misread", "misread", "{}", "min"),
    Column("gained", "gained vs ckpt", "{}", None),
    Column("lost", "lost vs ckpt", "{}", None),
    Column("changed", "changed", "{}", None),
    Column("fixed", "fixed", "{}", None),
    Column("broken", "broken", "{}", None),
    Column("extra_no_dedup", "extra w/o dedup", "{}", "min"),
    Column("examples", "examples", "{}", None),
]


def parse_sweep(specs: Sequence[str]) -> dict[str, list[float]]:
    """['nms=0.3,0.5,0.7', 'score=0.05,0.65'] -> {'nms': [0.3, 0.5, 0.7], 'score': [0.05, 0.65]}."""
    out: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or name not in PARAMS:
            raise DigitdetError(f"sweep {spec!r}: expected NAME=v1,v2,... with NAME one of {', '.join(PARAMS)}")
        try:
            parsed = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise DigitdetError(f"sweep {spec!r}: values must be numbers separated by commas") from None
        if not parsed or any(not 0.0 <= v <= 1.0 for v in parsed):
            raise DigitdetError(f"sweep {spec!r}: give one or more values within [0, 1]")
        out.setdefault(name, [])
        out[name] += [v for v in parsed if v not in out[name]]
    return out


def filter_score(dets: list[dict], thresh: float) -> list[dict]:
    """Detections scoring >= `thresh` (what the detector's own score threshold would have kept)."""
    out = []
    for d in dets:
        keep = np.asarray(d["scores"]) >= thresh
        out.append({**d, "boxes": d["boxes"][keep], "scores": d["scores"][keep], "labels": d["labels"][keep]})
    return out


def reading_counts(read: dict[int, str], truth: dict[int, str], ref: dict[int, str]) -> dict[str, int]:
    """Per-image counts over `truth`'s images. correct + extra + missing + misread = images, where extra /
    missing = more / fewer digits than the truth and misread = the right count, wrong digits. gained /
    lost = more / fewer digits than `ref` (the checkpoint's own setting) read; fixed / broken = right now
    but wrong at `ref` / the other way round."""
    c = dict.fromkeys(("images", "correct", "extra", "missing", "misread", "gained", "lost", "changed",
                       "fixed", "broken"), 0)
    for i, t in truth.items():
        p, r = read.get(i, numbers.NO_NUMBER), ref.get(i, numbers.NO_NUMBER)
        n_p, n_t, n_r = len(digits(p)), len(digits(t)), len(digits(r))
        c["images"] += 1
        if p == t:
            c["correct"] += 1
        elif n_p > n_t:
            c["extra"] += 1
        elif n_p < n_t:
            c["missing"] += 1
        else:
            c["misread"] += 1
        c["gained"] += n_p > n_r
        c["lost"] += n_p < n_r
        c["changed"] += p != r
        c["fixed"] += p == t and r != t
        c["broken"] += p != t and r == t
    return c


def evaluate_setting(dets: list[dict], split: Split, setting: dict[str, float], ref: dict[int, str] | None):
    """(row of scores and counts, numbers read) for detections already at the setting's NMS and score."""
    truth = split.truth([d["image_id"] for d in dets])
    res = score_detections(dets, split.coco, read_thresh=setting["read"], dedup_iou=setting["dedup"])
    read = numbers.read_all(dets, setting["read"], setting["dedup"])
    no_dedup = numbers.read_all(dets, setting["read"], 1.0)
    counts = reading_counts(read, truth, read if ref is None else ref)
    row = {"AP": res["coco"]["AP"], "AP50": res["coco"]["AP50"], "number_accuracy": res["number_accuracy"],
           "accuracy_no_dedup": numbers.number_accuracy(no_dedup, truth), **counts,
           "extra_no_dedup": reading_counts(no_dedup, truth, read)["extra"]}
    return row, read, no_dedup


def _examples(split: Split, dets: list[dict], read: dict[int, str], ref: dict[int, str], setting: dict,
              path: Path, title: str, limit: int, suffix: str = "") -> str:
    """Draw up to `limit` images whose reading differs from `ref` (digit count changes first)."""
    truth = split.truth([d["image_id"] for d in dets])
    changed = [i for i in sorted(read) if read[i] != ref.get(i)]
    changed.sort(key=lambda i: len(digits(read[i])) == len(digits(ref[i])))  # stable: count changes first
    by_id = {d["image_id"]: d for d in dets}
    panels = [number_panel(split, by_id[i], f"#{i} gt {truth[i]}: {short(ref[i])}>{short(read[i])}{suffix}",
                           setting["read"], setting["dedup"]) for i in changed[:limit]]
    if not panels:
        return ""
    save_gallery(panels, path, title=title, cell=CELL)
    return path.name


def run_sweep(checkpoint: str | Path, data_dir: str | Path, specs: Sequence[str], out_dir: str | Path | None = None,
              *, split: str = "valid", overrides: tuple[str, ...] = (), limit: int | None = None,
              examples: int = 12, progress: bool = True) -> dict:
    """Sweep the parameters of `specs` (see parse_sweep) and write OUT/sweep.md, sweep.csv, sweep.json and
    the example galleries; returns {'reference': setting, 'rows': [...], 'images': n}."""
    from digitdet.model.checkpoint import model_from_checkpoint

    sweep = parse_sweep(specs)
    if not sweep:
        raise DigitdetError("sweep: nothing to sweep (e.g. nms=0.3,0.5,0.7 score=0.05,0.65)")
    out = Path(out_dir) if out_dir is not None else Path(checkpoint).parent / "sweep"
    device = default_device()
    cfg, model, _ = model_from_checkpoint(checkpoint, overrides, device=device)
    ref_setting = {name: float(getattr(cfg.predict, key)) for name, key in PARAMS.items()}
    floor = min(SCORE_FLOOR, ref_setting["score"], *sweep.get("score", [1.0]))
    sp = open_split(data_dir, split, cfg, limit=limit)
    cache: dict[float, list[dict]] = {}

    def detections(setting: dict) -> list[dict]:
        if setting["nms"] not in cache:
            set_postprocess(model, score_thresh=floor, nms_thresh=setting["nms"])
            cache[setting["nms"]], _ = timed_inference(model, sp, cfg, device, progress=progress,
                                                       desc=f"nms {setting['nms']:g}")
        return filter_score(cache[setting["nms"]], setting["score"])

    ref_dets = detections(ref_setting)
    ref_row, ref_read, ref_no_dedup = evaluate_setting(ref_dets, sp, ref_setting, None)
    label = ", ".join(f"{k} {v:g}" for k, v in ref_setting.items())
    rows = [{"setting": f"checkpoint ({label})", "param": None, "value": None, **ref_row}]
    rows[0]["examples"] = _examples(
        sp, ref_dets, ref_no_dedup, ref_read, {**ref_setting, "dedup": 1.0}, out / "sweep_dedup_off.png",
        "without duplicate suppression vs with it, at the checkpoint's setting", examples, " w/o dedup")
    for param, values in sweep.items():
        for value in values:
            setting = {**ref_setting, param: value}
            dets = detections(setting)
            row, read, _ = evaluate_setting(dets, sp, setting, ref_read)
            row = {"setting": f"{param}={value:g}", "param": param, "value": value, **row}
            row["examples"] = _examples(
                sp, dets, read, ref_read, setting, out / f"sweep_{param}_{value:g}.png",
                f"{param}={value:g}: reading changed on {row['changed']} images vs the checkpoint's "
                f"{param}={ref_setting[param]:g}", examples)
            rows.append(row)
    result = {"checkpoint": str(checkpoint), "split": split, "images": ref_row["images"],
              "reference": ref_setting, "score_floor": floor, "rows": rows}
    io.write_json(out / "sweep.json", result)
    io.write_text(out / "sweep.csv", csv_table(rows, COLUMNS))
    io.write_text(out / "sweep.md", sweep_markdown(result))
    return result


def sweep_markdown(result: dict) -> str:
    ref = result["reference"]
    first = result["rows"][0]
    md_rows = [{**r, "examples": f"[{r['examples']}]({r['examples']})" if r["examples"] else "–"}
               for r in result["rows"]]
    lines = [
        "# Post-processing sweep",
        "",
        f"Checkpoint `{result['checkpoint']}` on the {result['split']} split ({result['images']} images); "
        f"its own setting: NMS {ref['nms']:g}, score threshold {ref['score']:g}, reading threshold "
        f"{ref['read']:g}, duplicate suppression IoU {ref['dedup']:g}. Every other row changes one of them "
        f"(inference at score >= {result['score_floor']:g}, the score threshold applied afterwards).",
        "",
        markdown_table(md_rows, COLUMNS),
        "correct + extra digits + missing digits + misread = images. *extra digits*: more digits read than the "
        "truth has (duplicates, \"117 → 1117\"); *missing*: fewer (misses); *misread*: the right count, a wrong "
        "digit. *gained/lost vs ckpt*: images reading more/fewer digits than at the checkpoint's setting; "
        "*fixed/broken*: right here but wrong there / the other way round. *w/o dedup*: read without the "
        "class-agnostic duplicate suppression (predict.dedup_iou=1.0).",
        "",
        f"Duplicate suppression at the checkpoint's setting: {first['extra_no_dedup']} images read extra digits "
        f"without it and {first['extra']} with it; number accuracy {first['accuracy_no_dedup']:.3f} → "
        f"{first['number_accuracy']:.3f}.",
        "",
    ]
    for k, r in enumerate(result["rows"]):
        if r["examples"]:
            title = "duplicate suppression off, at the checkpoint's setting" if k == 0 else r["setting"]
            lines += [f"## {title}", "", f"![{title}]({r['examples']})", ""]
    return "\n".join(lines)
