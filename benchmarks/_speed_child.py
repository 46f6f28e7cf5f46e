"""The child side of benchmarks/speed.py: one measurement (inference, training or export) in a fresh process,
its result printed as one `MARK + json` line for the parent to read. Run only through `speed.py --child`."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

MARK = "@@RESULT@@ "


# ----------------------------------------------------------------------------------------------- child
def _cfg_and_model(spec: dict, device):
    import torch

    from digitdet.config import load_config
    from digitdet.model import build_model
    from digitdet.model.checkpoint import model_from_checkpoint

    if spec.get("checkpoint"):
        cfg, model, _ = model_from_checkpoint(spec["checkpoint"], device=device)
        return cfg, model
    torch.manual_seed(0)  # random weights, the same for every run
    cfg = load_config([spec["config"]], spec.get("overrides", []))
    return cfg, build_model(cfg).to(device)


def _checkpoint_cfg(path: str):
    """The config model_from_checkpoint would give, without building the model (ONNX rows)."""
    from dataclasses import replace

    from digitdet.model.checkpoint import config_from_checkpoint, load_checkpoint

    ckpt = load_checkpoint(path)
    cfg = config_from_checkpoint(ckpt)
    if ckpt.get("read_thresh") is not None:
        cfg = replace(cfg, predict=replace(cfg.predict, read_thresh=float(ckpt["read_thresh"])))
    return cfg


def _load(paths: list[str], cfg, double_norm: bool):
    """Decoded, transformed image tensors (3,H,W) as the data pipeline yields them."""
    import torch

    from digitdet.data.coco import read_image
    from digitdet.data.transforms import build_transforms

    tf = build_transforms(cfg.data, train=False)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    out = [tf(read_image(p), empty)[0] for p in paths]
    return _normalize(out, cfg) if double_norm else out


def _normalize(images: list, cfg) -> list:
    """The report's first normalization, in its dataset; the model normalizes again."""
    import torch

    mean, std = (torch.tensor(v)[:, None, None] for v in (cfg.model.image_mean, cfg.model.image_std))
    return [(im - mean) / std for im in images]


def _timed(fn, batches: list, repeats: int) -> list[float]:
    """Seconds per batch, over `repeats` passes."""
    secs = []
    for _ in range(repeats):
        for batch in batches:
            t0 = time.perf_counter()
            fn(batch)
            secs.append(time.perf_counter() - t0)
    return secs


def child_infer(spec: dict) -> dict:
    import numpy as np
    import torch

    device = torch.device(spec["device"])
    if spec.get("onnx"):  # ONNX rows always come from a checkpoint: its config drives the data pipeline
        from digitdet.model.onnx_runtime import onnx_runner

        cfg, fn = _checkpoint_cfg(spec["checkpoint"]), onnx_runner(spec["onnx"], False, device=spec["device"])
    else:
        from digitdet.model.inference import run_inference

        cfg, model = _cfg_and_model(spec, device)
        model.eval()

        def fn(loader):
            return run_inference(model, loader, device, progress=False)

    dn = spec.get("double_norm", False)
    imgs = _load(spec["images"], cfg, dn)
    # Size-grouped batches, as digitdet's inference_loader makes them.
    order = sorted(range(len(imgs)), key=lambda i: (imgs[i].shape[-2], imgs[i].shape[-1], i))
    one = [[([imgs[i]], [{"image_id": i}])] for i in order]
    eight = [[([imgs[i] for i in order[k:k + 8]], [{"image_id": i} for i in order[k:k + 8]])]
             for k in range(0, len(order), 8)]
    if spec.get("warm", True):  # allocator, oneDNN primitives: every row warms up alike (rows_for)
        fn(one[0])
    if spec.get("warm_b8", True):
        fn(eight[0])
    reps = spec.get("repeats", 1)
    lat = _timed(fn, one, reps)
    t8 = _timed(fn, eight, reps)
    large = _load(spec.get("large", []), cfg, dn)
    lat_large = _timed(fn, [[([im], [{"image_id": 0}])] for im in large], 1) if large else []
    out = {
        "img_s_b1": len(lat) / sum(lat), "img_s_b8": reps * len(imgs) / sum(t8),
        "p50_ms": 1000 * float(np.percentile(lat, 50)), "p95_ms": 1000 * float(np.percentile(lat, 95)),
        "large_ms": 1000 * float(np.mean(lat_large)) if lat_large else None,
        "n_b1": len(lat), "n_b8": reps * len(imgs), "threads": torch.get_num_threads(),
    }
    if spec.get("eval_dir"):
        out.update(_accuracy(spec, cfg, fn))
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        out["gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _accuracy(spec: dict, cfg, fn) -> dict:
    from torch.utils.data import Subset

    from digitdet.data.coco import DigitDataset
    from digitdet.data.loaders import inference_loader
    from digitdet.data.transforms import build_transforms
    from digitdet.training.evaluate import score_detections

    ds = DigitDataset(Path(spec["eval_dir"]) / "test", Path(spec["eval_dir"]) / "test.json",
                      transforms=build_transforms(cfg.data, train=False))
    coco = ds.coco
    n = min(spec.get("eval_images") or len(ds), len(ds))
    sub = Subset(ds, range(n)) if n < len(ds) else ds
    t0 = time.perf_counter()
    dets = fn(inference_loader(sub, cfg.predict.batch_size, 0))
    eval_s = time.perf_counter() - t0
    res = score_detections(dets, coco, read_thresh=cfg.predict.read_thresh, dedup_iou=cfg.predict.dedup_iou)
    return {"mAP": res["coco"]["AP"], "AP50": res["coco"]["AP50"], "number_acc": res["number_accuracy"],
            "eval_images": n, "eval_img_s": n / eval_s}


def child_train(spec: dict) -> dict:
    from itertools import islice

    import torch
    from torch.utils.data import DataLoader

    from digitdet.data.coco import collate_detection
    from digitdet.data.loaders import make_dataset
    from digitdet.training.engine import train_one_epoch

    device = torch.device(spec["device"])
    cfg, model = _cfg_and_model(spec, device)
    ds = make_dataset(spec["data"], "train", cfg, train=True)
    bs, warm, steps = spec["train_batch"], spec["train_warmup"], spec["train_steps"]
    loader = DataLoader(ds, batch_size=bs, shuffle=False, collate_fn=collate_detection, num_workers=0)
    batches = list(islice(loader, warm + steps))
    if spec.get("double_norm"):
        batches = [(_normalize(imgs, cfg), t) for imgs, t in batches]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" and cfg.train.amp else None
    kw = {"scaler": scaler, "clip_grad_norm": cfg.train.clip_grad_norm, "progress": False}
    if warm:
        train_one_epoch(model, batches[:warm], opt, device, epoch=0, start_step=0, **kw)
    r = train_one_epoch(model, batches[warm:], opt, device, epoch=0, start_step=warm, **kw)
    return {"train_img_s": r["images_per_s"], "train_batch": bs, "train_steps": r["steps"],
            "train_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_export(spec: dict) -> dict:
    from digitdet.reading.export import export_onnx

    r = export_onnx(spec["checkpoint"], spec["out"], quantize=spec.get("quantize", False))
    return {"bytes": r["bytes"], "max_box_diff_px": r["verify"]["max_box_diff_px"],
            "max_score_diff": r["verify"]["max_score_diff"], "verified_images": r["verify"]["images"],
            "same_numbers": r["verify"]["same_numbers"]}


def child_main(spec: dict) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    fn = {"infer": child_infer, "train": child_train, "export": child_export}[spec["kind"]]
    print(MARK + json.dumps(fn(spec)), flush=True)
