"""Command line: argument parsing and dispatch only; every command's work lives in a module."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from digitdet.errors import DigitdetError


def _cmd_synth(a: argparse.Namespace) -> int:
    from digitdet.data.synth import generate_dataset, parse_modes, write_preview

    if a.out is None and a.preview is None:
        raise DigitdetError("synth: give OUT_DIR and/or --preview FILE.png")
    modes = parse_modes(a.modes) if a.modes else None
    if a.preview:
        write_preview(a.preview, n=a.preview_n, seed=a.seed, modes=modes)
        print(f"preview written to {a.preview}")
    if a.out:
        counts = {"train": a.train, "valid": a.valid, "test": a.test}
        stats = generate_dataset(a.out, counts, seed=a.seed, workers=a.workers, progress=not a.quiet,
                                 modes=modes)
        print(f"{stats['images']} images, {stats['boxes']} boxes in {stats['seconds']:.1f} s "
              f"({stats['images_per_s']:.0f} images/s) -> {a.out}")
    return 0


def _cmd_check(a: argparse.Namespace) -> int:
    from digitdet.data.check import check_dataset, format_summary

    print(format_summary(check_dataset(a.data)))
    return 0


def _cmd_convert_svhn(a: argparse.Namespace) -> int:
    from digitdet.data.svhn import convert_svhn

    summary = convert_svhn(a.mat, a.out, image_dir=a.images)
    print(json.dumps(summary))
    return 0


def _overrides(a: argparse.Namespace) -> list[str]:
    extra = list(a.overrides)
    if getattr(a, "max_epochs", None) is not None:
        extra.append(f"train.epochs={a.max_epochs}")
    if getattr(a, "limit", None) is not None:
        extra += [f"train.limit={a.limit}", f"train.val_limit={a.limit}"]
    # One budget at a time: a flag replaces whatever budget the config file sets.
    if getattr(a, "images", None) is not None:
        extra += [f"train.max_images={a.images}", "train.max_minutes=null"]
    if getattr(a, "minutes", None) is not None:
        extra += [f"train.max_minutes={a.minutes}", "train.max_images=null"]
    return extra


def _cmd_train(a: argparse.Namespace) -> int:
    from digitdet.config import load_config
    from digitdet.training import distributed
    from digitdet.training.fit import fit

    cfg = load_config(a.config, _overrides(a))
    summary = fit(cfg, a.data, a.out, resume=a.resume, progress=not a.quiet)
    if not distributed.is_main():
        return 0  # under torchrun only rank 0 reports
    print(json.dumps({k: summary[k] for k in ("epochs", "best_val_mAP", "val_number_accuracy",
                                              "read_thresh", "train_images_per_s")}))
    return 0


def _cmd_eval(a: argparse.Namespace) -> int:
    import torch

    from digitdet import io
    from digitdet.metrics import format_stats
    from digitdet.model.checkpoint import model_from_checkpoint
    from digitdet.training.evaluate import evaluate_split

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg, model, _ = model_from_checkpoint(a.checkpoint, tuple(a.overrides), device=device)
    result, _, _ = evaluate_split(model, a.data, a.split, cfg, device, progress=not a.quiet)
    print(format_stats(result["stats"]))
    print(f"number accuracy = {result['number_accuracy']:.4f} "
          f"(reading threshold {result['read_thresh']:.2f}, {result['images']} images)")
    out = Path(a.out) if a.out else Path(a.checkpoint).parent
    io.write_json(out / f"metrics_{a.split}.json", {k: v for k, v in result.items() if k != "stats"})
    return 0


def _cmd_predict(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from digitdet.reading.predict import predict_folder

    runner = None
    if a.onnx:
        from digitdet.model.onnx_runtime import onnx_runner

        runner = onnx_runner(a.onnx, progress=not a.quiet)

    def warn(reason: str) -> None:  # one line per file that cannot be read; above any progress bar
        tqdm.write(f"digitdet: warning: skipped {reason}", file=sys.stderr)

    summary = predict_folder(a.checkpoint, a.images, a.out, ann_file=a.ann, overrides=tuple(a.overrides),
                             visualize=a.visualize, runner=runner, progress=not a.quiet, warn=warn)
    out = Path(a.out)
    written = f"{out / 'pred.json'}, {out / 'pred.csv'}" + ("" if a.ann else f", {out / 'images.json'}")
    skipped = len(summary["skipped"])
    print(f"{summary['read']} images read, {skipped} skipped (cannot be read: pred.csv row -1), "
          f"{summary['boxes']} boxes, {summary['no_digit']} without digits -> {written}")
    if summary["read"] == 0:
        print(f"digitdet: error: none of the {summary['images']} images in {a.images} could be read",
              file=sys.stderr)
        return 2
    return 0


def _cmd_pretrain(a: argparse.Namespace) -> int:
    from digitdet.training.pretrain import PretrainSettings, pretrain

    fields = ("backbone", "norm", "layers", "images", "holdout", "epochs", "batch_size", "lr", "short_side",
              "crop", "seed")
    settings = PretrainSettings(**{k: getattr(a, k) for k in fields if getattr(a, k) is not None})
    summary = pretrain(a.out, settings, resume=a.resume, progress=not a.quiet)
    print(f"trunk written to {a.out}: held-out accuracy {summary['heldout_acc']:.3f} on "
          f"{summary['heldout_crops']} crops ({summary['crops']} training crops, {summary['crops_per_s']:.0f} crops/s)")
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from digitdet.studies.demo import format_summary, run_demo

    counts = {"train": a.train, "valid": a.valid, "test": a.test}
    summary = run_demo(a.out, data_dir=a.data, config=a.config, overrides=tuple(_overrides(a)),
                       counts=counts, progress=not a.quiet)
    print(format_summary(summary))
    print(f"outputs in {a.out}: best.pt pred.json pred.csv curve.png gallery.png summary.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="digitdet", description="Find every digit in house-number photos and read the whole number."
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("synth", help="generate the synthetic house-number dataset")
    s.add_argument("out", nargs="?", help="output folder (course layout)")
    s.add_argument("--train", type=int, default=8000)
    s.add_argument("--valid", type=int, default=500)
    s.add_argument("--test", type=int, default=500)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    s.add_argument("--preview", help="write a PNG grid of samples with boxes")
    s.add_argument("--preview-n", type=int, default=48)
    s.add_argument("--modes", metavar="NAME=W,...",
                   help="mix of generator modes by weight, e.g. crop=0.4,tight=0.2,plaque=0.2,scene=0.2 "
                        "(modes: crop, tight, plaque, scene; default crop=1)")
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("check", help="validate a dataset folder and print statistics")
    s.add_argument("data", help="folder with train/ train.json valid/ valid.json [test/]")
    s.set_defaults(func=_cmd_check)

    s = sub.add_parser("convert-svhn", help="SVHN digitStruct.mat -> COCO json")
    s.add_argument("mat")
    s.add_argument("out")
    s.add_argument("--images", help="folder of the SVHN images (for widths/heights)")
    s.set_defaults(func=_cmd_convert_svhn)

    def budget(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--max-epochs", type=int, help="shorthand for train.epochs=N")
        sp.add_argument("--limit", type=int, help="use only the first N train/valid images (smoke test)")
        budget_flags = sp.add_mutually_exclusive_group()
        budget_flags.add_argument("--images", type=int, metavar="N",
                                  help="training budget in images seen (train.max_images): the same steps on any host")
        budget_flags.add_argument("--minutes", type=float,
                                  help="training budget in minutes, turned into steps after timing the first "
                                       "steps (train.max_minutes)")
        sp.add_argument("overrides", nargs="*", metavar="section.key=value")

    s = sub.add_parser("train", help="train a detector")
    s.add_argument("--config", action="append", required=True, help="YAML config (repeat to stack)")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True, help="run folder")
    s.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    budget(s)
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("eval", help="COCO stats + number accuracy of a checkpoint on a split")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="valid")
    s.add_argument("--out", help="folder for metrics_SPLIT.json (default: the checkpoint's folder)")
    s.add_argument("overrides", nargs="*", metavar="section.key=value")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("predict", help="write pred.json and pred.csv for a folder of images")
    s.add_argument("--checkpoint", help="a digitdet checkpoint (default: the reader shipped in the package)")
    s.add_argument("--images", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--ann", help="COCO json giving the image ids (default: from the file names: integer stems keep "
                                 "theirs, other names get the next ids in name order, listed in OUT/images.json)")
    s.add_argument("--visualize", type=int, default=0, metavar="N", help="gallery of N images")
    s.add_argument("--onnx", help="run this exported model with onnxruntime instead of torch (at the model's "
                                  "own scale: no whole-photo pyramid)")
    s.add_argument("overrides", nargs="*", metavar="section.key=value")
    s.set_defaults(func=_cmd_predict)

    s = sub.add_parser("pretrain", help="train the detector's trunk as a glyph classifier (model.backbone_weights)")
    s.add_argument("--out", required=True, help="trunk file to write (float16 state dict)")
    s.add_argument("--images", type=int, help="synthetic images to cut crops from (default 20000)")
    s.add_argument("--holdout", type=int, help="further images for the held-out accuracy (default 1000)")
    s.add_argument("--epochs", type=int, help="passes over the crops (default 3)")
    s.add_argument("--backbone", help="resnet18 (default) / resnet34 / resnet50 / resnet101")
    s.add_argument("--norm", help="batchnorm (default) or groupnorm")
    s.add_argument("--layers", type=int, help="ResNet stages kept, 1-4 (default 3: the cpu.yaml trunk)")
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--short-side", type=int, help="image short side the crops are cut at (default 80)")
    s.add_argument("--crop", type=int, help="crop side in pixels (default 48)")
    s.add_argument("--seed", type=int)
    s.add_argument("--resume", action="store_true", help="continue from OUT.ckpt")
    s.set_defaults(func=_cmd_pretrain)

    s = sub.add_parser("demo", help="synthesize data, train, evaluate and predict (the README command)")
    s.add_argument("--out", default="runs/demo")
    s.add_argument("--data", default="data/synth")
    s.add_argument("--config", default="cpu.yaml")
    s.add_argument("--train", type=int, default=8000)
    s.add_argument("--valid", type=int, default=500)
    s.add_argument("--test", type=int, default=500)
    budget(s)
    s.set_defaults(func=_cmd_demo)

    # Experiment commands (ablate, sweep, errors) and speed commands (export) register themselves.
    from digitdet.cli import experiments as cli_experiments
    from digitdet.cli import read as cli_read
    from digitdet.cli import serve as cli_serve
    from digitdet.cli import speed as cli_speed

    cli_read.register(sub)
    cli_serve.register(sub)
    cli_experiments.register(sub, budget)
    cli_speed.register(sub, budget)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DigitdetError as exc:
        print(f"digitdet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitdet: interrupted", file=sys.stderr)
        return 130
