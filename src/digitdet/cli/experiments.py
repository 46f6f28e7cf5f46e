"""Experiment commands: `digitdet ablate` (train variants, tabulate), `sweep` (post-processing thresholds from
one checkpoint), `errors` (gallery of wrongly read numbers by kind) and `demo` (the README command).
Parsing only; the work is in digitdet.studies."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitdet.cli.budget import overrides as _overrides


def _split_items(items: list[str]) -> tuple[list[str], list[str]]:
    """Positional words -> (files / sweep specs without a dot in the key, section.key=value overrides)."""
    plain, overrides = [], []
    for item in items:
        key, sep, _ = item.partition("=")
        (overrides if sep and "." in key else plain).append(item)
    return plain, overrides


def _cmd_ablate(a: argparse.Namespace) -> int:
    from digitdet.studies.ablate import run_ablation

    deltas, overrides = _split_items(a.items)
    rows = run_ablation(a.base, deltas, a.data, a.out, overrides=overrides, epochs=a.epochs, minutes=a.minutes,
                        images=a.images, limit=a.limit, force=a.force, speed_images=a.speed_images,
                        progress=not a.quiet)
    print(f"{'variant':<16} {'status':<10} {'AP':>6} {'AP50':>6} {'acc':>6} {'train min':>9} {'img/s':>7}")
    for r in rows:
        ap = r["AP"] if r["AP"] is not None else float("nan")
        print(f"{r['variant']:<16} {r['status']:<10} {ap:6.3f} {r['AP50'] or 0:6.3f} "
              f"{r['number_accuracy']:6.3f} {r['train_minutes']:9.1f} {r['infer_images_per_s']:7.1f}")
    out = Path(a.out)
    print(f"-> {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.png'}, {out / 'curves.png'}")
    return 0


def _cmd_sweep(a: argparse.Namespace) -> int:
    from digitdet.studies.sweep import run_sweep

    specs, overrides = _split_items(a.items)
    result = run_sweep(a.checkpoint, a.data, specs or ["nms=0.3,0.5,0.7"], a.out, split=a.split,
                       overrides=tuple(overrides), limit=a.limit, examples=a.examples, progress=not a.quiet)
    w = max(len(r["setting"]) for r in result["rows"])
    print(f"{'setting':<{w}} {'AP':>6} {'acc':>6} {'extra':>6} {'missing':>7} {'gained':>6} {'lost':>5}")
    for r in result["rows"]:
        print(f"{r['setting']:<{w}} {r['AP'] or 0:6.3f} {r['number_accuracy']:6.3f} {r['extra']:6d} "
              f"{r['missing']:7d} {r['gained']:6d} {r['lost']:5d}")
    out = Path(a.out) if a.out else Path(a.checkpoint).parent / "sweep"
    print(f"-> {out / 'sweep.md'}, {out / 'sweep.csv'} ({result['images']} images)")
    return 0


def _cmd_errors(a: argparse.Namespace) -> int:
    from digitdet.studies.errors import KINDS, analyse_errors

    s = analyse_errors(a.checkpoint, a.data, a.out, split=a.split, overrides=tuple(a.overrides), limit=a.limit,
                       per_kind=a.per_kind, progress=not a.quiet)
    counts = ", ".join(f"{label} {s['counts'][kind]}" for kind, label in KINDS.items())
    out = Path(a.out) if a.out else Path(a.checkpoint).parent / "errors"
    print(f"{s['wrong']} of {s['images']} numbers read wrongly: {counts} -> {out / 'errors.md'}")
    return 0


def register(sub, budget) -> None:
    s = sub.add_parser(
        "ablate", help="train config variants (same seed and budget) and tabulate the results",
        epilog="Give the variant files and overrides in one block, before or after the options, e.g. "
               "digitdet ablate --base configs/cpu.yaml configs/ablations/*.yaml train.val_limit=50 "
               "--data data/synth --out runs/ablate --minutes 4")
    s.add_argument("--base", action="append", required=True, help="base config (repeat to stack)")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True, help="runs folder: one subfolder per variant + results.md/csv/png")
    s.add_argument("--epochs", "--max-epochs", dest="epochs", type=int, help="train.epochs for every variant")
    per_variant = s.add_mutually_exclusive_group()
    per_variant.add_argument("--minutes", type=float, help="training time budget per variant (train.max_minutes)")
    per_variant.add_argument("--images", type=int, metavar="N",
                             help="training budget per variant in images seen (train.max_images)")
    s.add_argument("--limit", type=int, help="train on the first N images, validate each epoch on N (smoke test; "
                   "final scores still cover the whole valid split)")
    s.add_argument("--force", action="store_true", help="redo variants that already finished")
    s.add_argument("--speed-images", type=int, default=100, metavar="N",
                   help="time inference of a trained variant over the first N valid images (0: all; default 100)")
    s.add_argument("items", nargs="*", metavar="VARIANT.yaml|section.key=value",
                   help="variant deltas (name = file stem) and overrides applied to every variant")
    s.set_defaults(func=_cmd_ablate)

    s = sub.add_parser("sweep", help="NMS / score / reading thresholds from one checkpoint, no retraining")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="valid")
    s.add_argument("--out", help="output folder (default: CHECKPOINT_DIR/sweep)")
    s.add_argument("--limit", type=int, help="only the first N images")
    s.add_argument("--examples", type=int, default=12, help="images drawn per value (default 12)")
    s.add_argument("items", nargs="*", metavar="NAME=v1,v2|section.key=value",
                   help="NAME: nms, score, read or dedup (default nms=0.3,0.5,0.7); overrides for the checkpoint")
    s.set_defaults(func=_cmd_sweep)

    s = sub.add_parser("errors", help="gallery and counts of wrongly read numbers, by kind")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="valid")
    s.add_argument("--out", help="output folder (default: CHECKPOINT_DIR/errors)")
    s.add_argument("--limit", type=int, help="only the first N images")
    s.add_argument("--per-kind", type=int, default=36, help="images drawn per kind (default 36)")
    s.add_argument("overrides", nargs="*", metavar="section.key=value")
    s.set_defaults(func=_cmd_errors)


def _cmd_demo(a: argparse.Namespace) -> int:
    from digitdet.studies.demo import format_summary, run_demo

    counts = {"train": a.train, "valid": a.valid, "test": a.test}
    summary = run_demo(a.out, data_dir=a.data, config=a.config, overrides=tuple(_overrides(a)),
                       counts=counts, progress=not a.quiet)
    print(format_summary(summary))
    print(f"outputs in {a.out}: best.pt pred.json pred.csv curve.png gallery.png summary.json")
    return 0


def register_demo(sub: argparse._SubParsersAction, budget) -> None:
    """`digitdet demo` (studies.demo)."""
    s = sub.add_parser("demo", help="synthesize data, train, evaluate and predict (the README command)")
    s.add_argument("--out", default="runs/demo")
    s.add_argument("--data", default="data/synth")
    s.add_argument("--config", default="cpu.yaml")
    s.add_argument("--train", type=int, default=8000)
    s.add_argument("--valid", type=int, default=500)
    s.add_argument("--test", type=int, default=500)
    budget(s)
    s.set_defaults(func=_cmd_demo)
