"""Dataset commands: `digitdet synth`, `check` and `convert-svhn`. Parsing and printing only; the work is
in digitdet.data."""

from __future__ import annotations

import argparse
import json

from digitdet.errors import DigitdetError


def _cmd_synth(a: argparse.Namespace) -> int:
    from digitdet.data.synth import generate_dataset, parse_modes, write_preview

    if a.out is None and a.preview is None:
        raise DigitdetError("synth: give OUT_DIR and/or --preview FILE.png")
    modes = parse_modes(a.modes) if a.modes else None
    if a.preview:
        write_preview(a.preview, n=a.preview_n, seed=a.seed, modes=modes, letters=a.letters, slats=a.slats,
                      half=a.half_cuts, half_count=a.half_count)
        print(f"preview written to {a.preview}")
    if a.out:
        counts = {"train": a.train, "valid": a.valid, "test": a.test}
        stats = generate_dataset(a.out, counts, seed=a.seed, workers=a.workers, progress=not a.quiet,
                                 modes=modes, letters=a.letters, slats=a.slats, half=a.half_cuts,
                                 half_count=a.half_count)
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


def register(sub: argparse._SubParsersAction) -> None:
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
                        "(modes: crop, tight, plaque, scene, relief, cut, sign; default crop=1)")
    s.add_argument("--letters", type=float, default=None, metavar="P",
                   help="chance of a letter suffix ('58P': a lookalike, never a digit) in every mode "
                        "(default: each mode's own, 4 %%, 6 %% on plaques); hard negatives for a reader")
    s.add_argument("--slats", type=float, default=None, metavar="P",
                   help="chance that a scene or sign photo's wall carries a panel of vertical slats (grooved "
                        "blocks, railings: each slat a lookalike, a 1 to a reader; default: never)")
    s.add_argument("--half-cuts", type=float, default=None, metavar="P",
                   help="chance that a digit cut by the crop border keeps nearly half its ink (with the default "
                        "--half-count: 30-45 %% no box, 55-72 %% a box), as real crops cut at half a digit do "
                        "(default: never; training data only)")
    s.add_argument("--half-count", type=float, default=0.5, metavar="F",
                   help="with --half-cuts: a cut digit counts (is boxed) from this fraction of its ink, 0.35-0.65 "
                        "(default 0.5, the box rule; real crops' truth counts a digit cut at 40 %% of its width)")
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("check", help="validate a dataset folder and print statistics")
    s.add_argument("data", help="folder with train/ train.json valid/ valid.json [test/]")
    s.set_defaults(func=_cmd_check)

    s = sub.add_parser("convert-svhn", help="SVHN digitStruct.mat -> COCO json")
    s.add_argument("mat")
    s.add_argument("out")
    s.add_argument("--images", help="folder of the SVHN images (for widths/heights)")
    s.set_defaults(func=_cmd_convert_svhn)
