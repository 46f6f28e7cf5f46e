"""Training commands: `digitdet train`, `eval`, `pretrain` and `line` (the line recogniser). Parsing and
printing only; the work is in digitdet.training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from digitdet.cli.budget import overrides as _overrides


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


def _cmd_pretrain(a: argparse.Namespace) -> int:
    from digitdet.training.pretrain import PretrainSettings, pretrain

    fields = ("backbone", "norm", "layers", "images", "holdout", "epochs", "batch_size", "lr", "short_side",
              "crop", "seed")
    settings = PretrainSettings(**{k: getattr(a, k) for k in fields if getattr(a, k) is not None})
    summary = pretrain(a.out, settings, resume=a.resume, progress=not a.quiet)
    print(f"trunk written to {a.out}: held-out accuracy {summary['heldout_acc']:.3f} on "
          f"{summary['heldout_crops']} crops ({summary['crops']} training crops, {summary['crops_per_s']:.0f} crops/s)")
    return 0


def register(sub: argparse._SubParsersAction, budget) -> None:
    """train and eval."""
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


def register_pretrain(sub: argparse._SubParsersAction) -> None:
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


def _cmd_line(a: argparse.Namespace) -> int:
    if a.step == "prepare":
        from digitdet.training.line import prepare

        done = prepare(a.folders, a.out, workers=a.workers, progress=not a.quiet, context=a.context,
                       seed=a.seed or 0, blanks=a.blanks)
        print(f"{done['close_ups']} close-ups and {done['blanks']} blank lines -> {a.out}; numbers by length "
              f"{done['by_length']}")
    elif a.step == "mine":
        from digitdet.training.blanks import mine

        done = mine(a.folders, a.out, a.n, seed=a.seed, context=a.context, progress=not a.quiet)
        print(f"{done['lines']} hard blank lines from {done['crops']} number-free crops -> {a.out}")
    elif a.step == "blank-head":
        from digitdet.training.blanks import fit_blank_head

        done = fit_blank_head(a.recogniser, a.lines, a.out, hard=a.hard, numbers=a.numbers, blanks=a.blanks,
                              seed=a.seed)
        print(f"no-number head on {done['numbers']} number, {done['blanks']} blank and {done['hard']} hard lines "
              f"(train accuracy {done['train_accuracy']:.4f}) -> {a.out}")
    elif a.step == "train":
        from digitdet.training.line import LineSettings, train

        fields = ("epochs", "batch", "lr", "width", "seed", "save_every", "init")
        settings = LineSettings(**{k: getattr(a, k) for k in fields if getattr(a, k) is not None})
        done = train(a.data, a.out, settings, resume=a.resume, progress=not a.quiet)
        print(f"{done['views']} views ({done['views_this_run']} this run) in {done['minutes']:.1f} min "
              f"({done['img_s']:.0f} img/s) -> {a.out}")
    else:
        from digitdet.model.line import pack_line_reader

        done = pack_line_reader(a.checkpoint, a.out, a.note or "", int8=a.int8, veto=a.veto)
        print(f"{a.checkpoint} ({done['meta'].get('seen', '?')} views) -> {a.out}")
    return 0


def register_line(sub: argparse._SubParsersAction) -> None:
    """line prepare / train / pack."""
    s = sub.add_parser("line", help="train the line recogniser that may dispute a close-up's number")
    steps = s.add_subparsers(dest="step", required=True, metavar="STEP")
    t = steps.add_parser("prepare", help="the close-ups of `digitdet synth` folders' train splits -> lines (.npz)")
    t.add_argument("folders", nargs="+")
    t.add_argument("--out", required=True, help=".npz file to write")
    t.add_argument("--workers", type=int, help="processes (default: all cores)")
    t.add_argument("--context", type=float, help="lines of the regions around the numbers that the dispute "
                   "reads at predict.line_context=CONTEXT, as the pair's box varies (default: whole close-ups)")
    t.add_argument("--seed", type=int, help="the regions' draws (default 0)")
    t.add_argument("--blanks", type=int, default=0, help="this many lines more of regions with no number "
                   "(walls, words; their truth: none), drawn from every photo of the folders")
    t = steps.add_parser("mine", help="hard blank lines: where the bundled pair reads a number in number-free crops "
                         "of `digitdet synth` folders' train photos (.npz, truth none)")
    t.add_argument("folders", nargs="+")
    t.add_argument("--out", required=True, help=".npz file to write")
    t.add_argument("--n", type=int, default=6000, help="number-free crops read (one a photo at most)")
    t.add_argument("--seed", type=int, default=0, help="the crops' draws")
    t.add_argument("--context", type=float, default=1.0, help="the region read, as predict.line_context")
    t = steps.add_parser("blank-head", help="a packed recogniser with a no-number head fitted on its frozen "
                         "features (predict.line_veto uses it)")
    t.add_argument("recogniser", help="a packed line recogniser (`digitdet line pack`'s file)")
    t.add_argument("--lines", nargs="+", required=True, help="prepare's .npz files with number and blank lines")
    t.add_argument("--hard", nargs="*", default=[], help="mine's .npz files (weighted 4)")
    t.add_argument("--numbers", type=int, default=20_000, help="number lines drawn")
    t.add_argument("--blanks", type=int, default=15_000, help="blank lines drawn")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="the packed recogniser with the head")
    t = steps.add_parser("train", help="train on prepared lines (checkpointed; --resume goes on)")
    t.add_argument("data", nargs="+", help="prepare's .npz files, trained on together")
    t.add_argument("--out", required=True, help="checkpoint file")
    t.add_argument("--epochs", type=int, help="passes over the lines (default 4)")
    t.add_argument("--batch", type=int, help="lines a step (default 64)")
    t.add_argument("--lr", type=float, help="peak of the one-cycle schedule (default 0.002)")
    t.add_argument("--width", type=float, help="channels x this (default 1.5: 1.3 M parameters)")
    t.add_argument("--seed", type=int)
    t.add_argument("--save-every", type=int, help="steps between checkpoints (default 500)")
    t.add_argument("--resume", action="store_true", help="go on from --out")
    t.add_argument("--init", help="start from this recogniser's weights (a checkpoint or packed file; "
                                   "fresh optimiser and schedule)")
    t = steps.add_parser("pack", help="a trained checkpoint (or a packed file) -> the shipped float16 (or --int8) "
                         "file")
    t.add_argument("checkpoint")
    t.add_argument("--veto", help="a second recogniser (trained with number-free lines) packed with it: it may also "
                   "veto a number (predict.line_veto); this one still reads and disputes")
    t.add_argument("--out", required=True)
    t.add_argument("--note", help="provenance kept in the file's meta (e.g. the measurement it passed)")
    t.add_argument("--int8", action="store_true", help="kernels and matrices as int8 with a scale per row: half "
                   "the bytes (a wider recogniser within the shipped weights' 40 MB)")
    s.set_defaults(func=_cmd_line)
