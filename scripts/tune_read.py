"""Number accuracy of a model on annotated splits at its stored reading threshold, and the threshold that
reading rules tuned on the validation split would pick (what `train.finish` stores in best.pt).

    python scripts/tune_read.py --data data/synth [--checkpoint runs/demo/best.pt] [--splits valid test]

No checkpoint: the bundled reader. Detections are made once per split (through the config's predict.scan,
the cascade by default, as `digitdet read`/`eval` run, or with --single-scale at the model's own scale) and
read at every threshold, so a change of the reading rules (numbers, grouping, pyramid merge) is measured
before and after on the same model and data. The threshold is tuned on the first split only (valid: never
tune on test or on the real photo sets).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a dataset in the course layout with SPLIT.json files")
    p.add_argument("--checkpoint", help="default: the bundled reader")
    p.add_argument("--splits", nargs="+", default=["valid", "test"], help="the first one is tuned on")
    p.add_argument("--single-scale", action="store_true", help="the model's own scale only (predict.scan=single)")
    p.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = p.parse_args(argv)
    import torch

    from digitdet.reading import numbers
    from digitdet.reading.reader import load_model
    from digitdet.training.evaluate import evaluate_split, truth_numbers

    cfg, model = load_model(args.checkpoint, tuple(args.overrides))
    if args.single_scale:
        cfg = replace(cfg, predict=replace(cfg.predict, scan="single"))
    stored, dedup = cfg.predict.read_thresh, cfg.predict.dedup_iou
    tuned = None
    print(f"model {args.checkpoint or 'bundled reader'}, stored reading threshold {stored:.2f}, "
          f"scan {cfg.predict.scan}")
    print("| split | images | mAP | number accuracy at stored | tuned threshold | number accuracy at tuned |")
    print("|---|---:|---:|---:|---:|---:|")
    for split in args.splits:
        result, dets, coco = evaluate_split(model, args.data, split, cfg, torch.device("cpu"), progress=False)
        truth = truth_numbers(coco, [d["image_id"] for d in dets])
        if tuned is None:
            tuned, _ = numbers.tune_read_threshold(dets, truth, dedup)
        at_tuned = numbers.number_accuracy(numbers.read_all(dets, tuned, dedup), truth)
        print(f"| {split} | {result['images']} | {result['coco']['AP']:.4f} | {result['number_accuracy']:.4f} | "
              f"{tuned:.2f} | {at_tuned:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
