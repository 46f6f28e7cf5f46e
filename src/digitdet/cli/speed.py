"""Speed commands: `digitdet export` (checkpoint -> ONNX, verified against eager PyTorch)."""

from __future__ import annotations

import argparse


def _cmd_export(a: argparse.Namespace) -> int:
    from digitdet.reading.export import export_onnx

    result = export_onnx(a.checkpoint, a.out, opset=a.opset, verify_images=a.verify or (),
                         overrides=tuple(a.overrides), quantize=a.int8)
    v = result["verify"]
    head = f"ONNX (opset {result['opset']}, {result['bytes'] / 1e6:.1f} MB) -> {result['path']}"
    diffs = f"max box diff {v['max_box_diff_px']:.2g} px, max score diff {v['max_score_diff']:.2g}"
    if result["quantized"]:
        print(f"int8 {head}; vs eager float32 on {v['images']} images: same number read on "
              f"{v['same_numbers']}, {diffs}")
        for problem in v["problems"][:5]:
            print(f"  {problem}")
    else:
        print(f"{head}; matches eager on {v['images']} images: {diffs} (tolerance {v['box_tol_px']} px, "
              f"{v['score_tol']}), same numbers read")
    return 0


def register(sub, budget) -> None:
    # The default opset is repeated here (export.DEFAULT_OPSET) so building the parser never imports onnx,
    # which costs seconds on every digitdet call.
    default_opset = 17
    s = sub.add_parser("export", help="export a checkpoint to ONNX (batch 1, any image size) and verify it")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", required=True, help="the .onnx file to write")
    s.add_argument("--opset", type=int, default=default_opset, help=f"ONNX opset (>= 11; default {default_opset})")
    s.add_argument("--verify", action="append", metavar="PATH",
                   help="also verify on these images or folders of images (repeatable)")
    s.add_argument("--int8", action="store_true",
                   help="dynamic int8 weights for the fully connected box head (faster on CPU, check accuracy)")
    s.add_argument("overrides", nargs="*", metavar="section.key=value",
                   help="config overrides baked into the export, e.g. predict.score_thresh=0.3")
    s.set_defaults(func=_cmd_export)
