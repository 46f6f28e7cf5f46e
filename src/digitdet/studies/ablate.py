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

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from digitdet import io
from digitdet.config import Config, load_config
from digitdet.errors import DigitdetError
from digitdet.model.checkpoint import model_from_checkpoint
from digitdet.reading import numbers
from digitdet.studies.errors import default_device, open_split, timed_inference
from digitdet.studies.results import write_report
from digitdet.training.evaluate import score_detections
from digitdet.training.fit import fit

BASELINE = "baseline"
RESULT = "result.json"
_RUN_FILES = ("result.json", "train_summary.json", "best.pt", "last.pt", "metrics.jsonl", "curve.png",
              "config.yaml")


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
