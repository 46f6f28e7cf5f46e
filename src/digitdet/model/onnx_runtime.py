"""Run an exported detector (see digitdet.reading.export) with ONNX Runtime instead of torch.

    runner = onnx_runner("model.onnx")         # a predict.Runner: DataLoader -> detections
    predict_folder(ckpt, images, out, runner=runner)

The checkpoint still supplies the data pipeline (upsample / contrast / sharpen) and the reading
thresholds; the .onnx holds the network, its resize/normalization, and the score/NMS thresholds it was
exported with. Images go through the session one at a time (the graph takes batch 1, any H x W).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from digitdet.errors import DigitdetError, first_line


def cpu_cores() -> int:
    """Cores this process may run on (respects taskset / cgroup affinity, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo), else what `platform` knows."""
    import platform

    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def make_session(onnx_path: str | Path, *, threads: int | None = None, device: str = "cpu"):
    """An onnxruntime.InferenceSession with every graph optimization on and one intra-op thread per core
    (inter-op parallelism off: the detector is one chain of ops). device 'cuda' uses the CUDA provider
    when this onnxruntime build has it."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise DigitdetError("--onnx needs onnxruntime (pip install 'digitdet[onnx]')") from exc
    path = Path(onnx_path)
    if not path.is_file():
        raise DigitdetError(f"{path}: ONNX model not found (make one with `digitdet export`)")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads or cpu_cores()
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only: shape-inference notes on torchvision's graph are noise
    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
        raise DigitdetError(f"{path}: not a loadable ONNX model ({first_line(exc)})") from None
    names = [i.name for i in session.get_inputs()]
    if names != ["image"]:
        raise DigitdetError(f"{path}: expected one input named 'image' (a digitdet export), found {names}")
    return session


def run_image(session, image: np.ndarray) -> dict:
    """One float32 (3, H, W) image in [0, 1] -> {'boxes' (N,4) xyxy float32 in its pixels, 'labels' (N,)
    int64, 'scores' (N,) float32}."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[0] != 3:
        raise DigitdetError(f"ONNX model input must be a (3, H, W) image, got shape {tuple(image.shape)}")
    boxes, labels, scores = session.run(["boxes", "labels", "scores"], {"image": image})
    return {"boxes": boxes.astype(np.float32).reshape(-1, 4), "labels": labels.astype(np.int64),
            "scores": scores.astype(np.float32)}


def detect(session, images: Iterable, targets: Iterable[dict]) -> list[dict]:
    """engine.run_inference's output for one batch: boxes divided by target['scale'] (when present) to
    return to original-image pixels."""
    out = []
    for image, target in zip(images, targets):
        det = run_image(session, image.numpy() if hasattr(image, "numpy") else image)
        sx, sy = target.get("scale", (1.0, 1.0))
        if (sx, sy) != (1.0, 1.0):
            det["boxes"] = det["boxes"] / np.array([sx, sy, sx, sy], dtype=np.float32)
        out.append({"image_id": int(target["image_id"]), **det})
    return out


def onnx_runner(onnx_path: str | Path, progress: bool = True, *, threads: int | None = None,
                device: str = "cpu"):
    """A predict.Runner: loader of (images, targets) -> [{'image_id', 'boxes', 'scores', 'labels'}] like
    engine.run_inference, computed by ONNX Runtime. The session is created once, here, so a missing or
    broken file fails before any image is read."""
    session = make_session(onnx_path, threads=threads, device=device)

    def runner(loader) -> list[dict]:
        out: list[dict] = []
        for images, targets in tqdm(loader, desc="predict (onnx)", leave=False, disable=not progress,
                                    unit="batch"):
            out += detect(session, images, targets)
        return out

    return runner
