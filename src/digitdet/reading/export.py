"""Export a checkpoint to ONNX and prove the export reads the same numbers as eager PyTorch.

The exported graph is the whole detector, transform included: its one input `image` is a float32
(3, H, W) tensor in [0, 1] exactly as the data pipeline yields it (after the config's upsample /
contrast / sharpen), H and W free; its outputs are `boxes` (N, 4) xyxy in that image's pixels,
`labels` (N,) int64 1..10 (= digits 0..9) and `scores` (N,) float32, best first. Batch size is 1:
torchvision's detector loops over images in Python, which tracing would unroll to a fixed count.
The detection thresholds (predict.score_thresh, predict.nms_thresh) are baked into the graph at export.

Verification runs eager and ONNX Runtime on the same images (synthetic house numbers at several sizes,
including a 52x23 crop and a wide 741x350 one, plus any real images given) and requires, for every
detection scoring >= score_thresh + SCORE_TOL in either: a partner in the other with the same label,
every box coordinate within BOX_TOL_PX pixels and the score within SCORE_TOL; and the same number read.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.nn import functional as F
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from digitdet import io
from digitdet.config import Config
from digitdet.data.coco import IMAGE_SUFFIXES, read_image
from digitdet.data.transforms import build_transforms
from digitdet.errors import DigitdetError, first_line
from digitdet.model.checkpoint import model_from_checkpoint
from digitdet.reading import numbers

DEFAULT_OPSET = 17  # torchvision detection needs >= 11; 17 is well supported by onnxruntime >= 1.14
MIN_OPSET = 11
BOX_TOL_PX = 0.5  # max |difference| of any box coordinate, in model-input pixels
SCORE_TOL = 1e-3
# (width, height) of the synthetic verification images: a tiny real-SVHN size, typical ones, a wide one.
VERIFY_SIZES = ((52, 23), None, None, (741, 350), (300, 40))
INPUT_NAMES = ["image"]
OUTPUT_NAMES = ["boxes", "labels", "scores"]


def export_onnx(
    checkpoint: str | Path,
    out_path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    verify_images: Iterable[str | Path] = (),
    synthetic: int = len(VERIFY_SIZES),
    overrides: Sequence[str] = (),
    quantize: bool = False,
) -> dict:
    """Write `out_path` (.onnx) from a digitdet checkpoint and verify it against eager PyTorch.

    `verify_images`: image files or folders of images (real photos) checked besides `synthetic`
    generated house-number images. `quantize` adds dynamic int8 weights to the fully connected layers
    (the box head), see `quantize_onnx`; an int8 model is approximate by design, so its verification
    reports the differences (and how many images read the same number) without failing.
    Returns {'path', 'opset', 'quantized', 'export_s', 'bytes', 'verify': {...}}. Raises DigitdetError for
    a bad opset or checkpoint, and when a float32 export disagrees with eager (OUT is then not written; the
    model is kept as NAME.rejected.onnx for inspection).
    """
    if opset < MIN_OPSET:
        raise DigitdetError(f"--opset {opset}: torchvision's detector needs opset >= {MIN_OPSET}")
    cfg, model, _ = model_from_checkpoint(checkpoint, tuple(overrides), device="cpu")
    out = Path(out_path)
    # Built and verified under a temporary name beside `out`: OUT appears only once it is complete and
    # verified, and an earlier OUT is never left half-overwritten.
    with io.atomic_path(out, suffix=".onnx") as tmp:
        t0 = time.perf_counter()
        if quantize:
            with tempfile.TemporaryDirectory() as tmp_dir:
                fp32 = Path(tmp_dir) / "fp32.onnx"
                trace_to_onnx(model, fp32, opset=opset, cfg=cfg)
                quantize_onnx(fp32, tmp)
        else:
            trace_to_onnx(model, tmp, opset=opset, cfg=cfg)
        export_s = time.perf_counter() - t0
        images = verification_images(cfg, verify_images, synthetic)
        report = verify_onnx(model, tmp, images, cfg, strict_boxes=not quantize)
        if not report["ok"] and not quantize:
            rejected = out.with_name(f"{out.stem}.rejected{out.suffix or '.onnx'}")
            os.replace(tmp, rejected)  # kept for inspection under a name no one mistakes for OUT
            raise DigitdetError(f"{out}: ONNX output differs from eager PyTorch: {report['problems'][0]} "
                                f"({len(report['problems'])} problem(s) on {report['images']} images); "
                                f"not written, the rejected model is {rejected}")
        size = tmp.stat().st_size
    return {"path": str(out), "opset": opset, "quantized": quantize, "export_s": round(export_s, 2),
            "bytes": size, "verify": report}


class ExactResize(GeneralizedRCNNTransform):
    """torchvision's eval-time resize, with the output size computed in float64 inside the graph.

    Eager torchvision computes scale = min_size / min(H, W) and floor(H * scale) in Python doubles; its
    traced version does the same in float32, which can land one pixel off (23 px * (104 / 23) -> 104
    instead of eager's 103) and then every feature differs. Doubles in the graph reproduce eager exactly.
    """

    @classmethod
    def like(cls, t: GeneralizedRCNNTransform) -> ExactResize:
        return cls(t.min_size, t.max_size, t.image_mean, t.image_std, size_divisible=t.size_divisible)

    def resize(self, image, target=None):
        if torchvision._is_tracing():
            shape = torch._shape_as_tensor(image)[-2:].to(torch.float64)
        else:
            shape = torch.tensor(image.shape[-2:], dtype=torch.float64)
        # 1-d tensors throughout: the exporter demotes 0-d float64 tensors to float32 "scalars".
        limits = torch.tensor([float(self.min_size[-1]), float(self.max_size)], dtype=torch.float64)
        sides = torch.cat([shape.min().reshape(1), shape.max().reshape(1)])
        scale = (limits / sides).min(dim=0, keepdim=True)[0]
        size = torch.floor(shape * scale).to(torch.int64)
        if not torchvision._is_tracing():
            size = [int(v) for v in size]
        image = F.interpolate(image[None], size=(size[0], size[1]), mode="bilinear", align_corners=False)[0]
        return image, target


def _gather_merge_levels(levels: torch.Tensor, unmerged: list[torch.Tensor]) -> torch.Tensor:
    """Put per-FPN-level RoIAlign results back in RoI order with one gather. torchvision's traced
    version scatters each level into a zero tensor of (N, C, 7, 7), which costs ONNX Runtime more than
    the RoIAlign itself; the values are identical."""
    order = torch.cat([torch.where(levels == k)[0] for k in range(len(unmerged))])
    inverse = torch.zeros_like(order).scatter(0, order, torch.arange(order.numel(), device=order.device))
    return torch.cat(unmerged, 0)[inverse]


@contextlib.contextmanager
def _export_patches():
    """Swap torchvision's scatter-based level merge for `_gather_merge_levels` while tracing."""
    from torchvision.ops import poolers

    original = poolers._onnx_merge_levels
    poolers._onnx_merge_levels = _gather_merge_levels
    try:
        yield
    finally:
        poolers._onnx_merge_levels = original


def trace_to_onnx(model: torch.nn.Module, path: str | Path, *, opset: int, cfg: Config | None = None) -> None:
    """torch.onnx.export (the TorchScript-tracing exporter, known to handle torchvision detection) with
    H and W of the single input image and the number of detections dynamic. The model is not changed."""
    model = model.eval().cpu()
    if type(model.transform) is GeneralizedRCNNTransform and model.transform.fixed_size is None:
        model = copy.copy(model)  # shallow: shares every weight, swaps only the transform
        model._modules = dict(model._modules)
        model.transform = ExactResize.like(model.transform)
    example = [torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(0))]
    dynamic = {"image": {1: "height", 2: "width"}, **{name: {0: "detections"} for name in OUTPUT_NAMES}}
    try:
        with warnings.catch_warnings(), _export_patches():
            warnings.simplefilter("ignore")  # TracerWarnings about shape constants torchvision handles
            torch.onnx.export(model, (example,), str(path), opset_version=opset, input_names=INPUT_NAMES,
                              output_names=OUTPUT_NAMES, dynamic_axes=dynamic, do_constant_folding=True,
                              dynamo=False)
    except Exception as exc:  # noqa: BLE001 - exporter errors are many types; report the first line
        raise DigitdetError(f"ONNX export (opset {opset}) failed: {first_line(exc)}") from exc
    if cfg is not None:
        _add_metadata(Path(path), cfg)


def _add_metadata(path: Path, cfg: Config) -> None:
    """Record the config and conventions in the file, so an .onnx can be traced back to its settings."""
    import onnx

    proto = onnx.load(str(path))
    meta = {
        "digitdet_config": cfg.to_yaml(),
        "digitdet_io": "image float32 (3,H,W) in [0,1] after the data transforms; boxes xyxy in its pixels; "
                       "labels 1..10 = digits 0..9",
        "score_thresh": str(cfg.predict.score_thresh),
        "nms_thresh": str(cfg.predict.nms_thresh),
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def quantize_onnx(src: str | Path, dst: str | Path) -> None:
    """Dynamic int8 quantization of MatMul/Gemm weights (the box head's two fully connected layers, which
    do most of the detection head's work); convolutions stay float32. Weights in 7 bits (reduce_range): on a
    CPU with AVX2 but no VNNI, ONNX Runtime's uint8 x int8 kernels saturate with 8-bit weights, and there
    the int8 model read 1 of 3 test images as float32 did (2026-12-05, AMD EPYC; tests/test_export.py),
    which 7-bit weights put right."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise DigitdetError("int8 quantization needs onnxruntime (pip install digitdet[onnx])") from exc
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a generic "consider pre-processing" hint
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"],
                             weight_type=QuantType.QInt8, reduce_range=True)
    finally:
        root.setLevel(level)


def verification_images(cfg: Config, paths: Iterable[str | Path] = (), synthetic: int = 5) -> list[tuple]:
    """[(name, image tensor (3,H,W) as the model sees it)]: `synthetic` generated house numbers (sizes from
    VERIFY_SIZES, None = as generated) and every image in `paths` (files or folders)."""
    from PIL import Image

    from digitdet.data.synth import render_sample, sample_rng

    tf = build_transforms(cfg.data, train=False)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    out = []
    for i in range(synthetic):
        pil = render_sample(sample_rng(0, 2, i + 1)).image
        size = VERIFY_SIZES[i % len(VERIFY_SIZES)]
        if size is not None:
            pil = pil.resize(size, Image.Resampling.BICUBIC)
        out.append((f"synthetic {i + 1} ({pil.width}x{pil.height})", tf(pil, empty)[0]))
    for path in _image_files(paths):
        pil = read_image(path)
        out.append((f"{path} ({pil.width}x{pil.height})", tf(pil, empty)[0]))
    return out


def _image_files(paths: Iterable[str | Path]) -> list[Path]:
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise DigitdetError(f"{p}: verification image or folder not found")
    return files


def verify_onnx(model: torch.nn.Module, onnx_path: str | Path, images: list[tuple], cfg: Config,
                *, strict_boxes: bool = True) -> dict:
    """Run eager and ONNX Runtime on `images` ([(name, tensor)]) and compare (see the module docstring).

    `strict_boxes=False` (int8 models) reports box and score differences without holding them to the
    float32 tolerances; different numbers read are problems either way."""
    from digitdet.model.onnx_runtime import make_session, run_image

    session = make_session(onnx_path)
    problems: list[str] = []
    box_diff = score_diff = 0.0
    same_numbers = 0
    thresh = cfg.predict.score_thresh + SCORE_TOL
    p = cfg.predict
    for name, image in images:
        with torch.inference_mode():
            det = model([image])[0]
        eager = {k: det[k].float().numpy() if k != "labels" else det[k].numpy() for k in det}
        onnx = run_image(session, image.numpy())
        b, s, bad = compare_detections(eager, onnx, thresh)
        box_diff, score_diff = max(box_diff, b), max(score_diff, s)
        if strict_boxes:
            problems += [f"{name}: {msg}" for msg in bad]
        read_e = numbers.read_number(eager["boxes"], eager["scores"], eager["labels"], p.read_thresh, p.dedup_iou)
        read_o = numbers.read_number(onnx["boxes"], onnx["scores"], onnx["labels"], p.read_thresh, p.dedup_iou)
        if read_e != read_o:
            problems.append(f"{name}: eager reads {read_e}, ONNX reads {read_o}")
        same_numbers += read_e == read_o
    return {"images": len(images), "ok": not problems, "problems": problems, "same_numbers": same_numbers,
            "max_box_diff_px": box_diff,
            "max_score_diff": score_diff, "box_tol_px": BOX_TOL_PX, "score_tol": SCORE_TOL}


def compare_detections(a: dict, b: dict, thresh: float) -> tuple[float, float, list[str]]:
    """(max box difference, max score difference, problems) between two detection sets
    ({'boxes' (N,4), 'scores' (N,), 'labels' (N,)} numpy). Each detection of either set scoring >= `thresh`
    needs a partner in the other: same label, the closest box (max coordinate difference); the problems
    list the pairs that are further apart than BOX_TOL_PX / SCORE_TOL or missing."""
    box_diff = score_diff = 0.0
    problems: list[str] = []
    for x, y, who in ((a, b, "eager"), (b, a, "ONNX")):
        for i in np.flatnonzero(x["scores"] >= thresh):
            same = np.flatnonzero(y["labels"] == x["labels"][i])
            if same.size == 0:
                problems.append(f"{who} detection {i} (label {x['labels'][i]}, score {x['scores'][i]:.3f}) "
                                "has no partner")
                continue
            d = np.abs(y["boxes"][same] - x["boxes"][i]).max(axis=1)
            j = same[int(np.argmin(d))]
            bd, sd = float(d.min()), abs(float(y["scores"][j] - x["scores"][i]))
            box_diff, score_diff = max(box_diff, bd), max(score_diff, sd)
            if bd > BOX_TOL_PX or sd > SCORE_TOL:
                problems.append(f"{who} detection {i} (label {x['labels'][i]}): box off by {bd:.3g} px, "
                                f"score by {sd:.3g}")
    return box_diff, score_diff, problems
