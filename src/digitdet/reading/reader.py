"""Image files -> readings: the model (a checkpoint, or the bundled reader), the data pipeline's eval
transforms, whole-photo detection (reading.scan: cascade or pyramid) and grouping into numbers (reading.grouping).

    reader = Reader()                      # the reader shipped in digitdet/weights
    reading = reader.read_file("house.jpg")
    reading.number, reading.confidence     # "117", 0.93 (number None when no digit is found)

A file that cannot be read gives a Reading with `error` set (one line naming the file and the problem);
the caller decides whether to go on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from digitdet.config import load_config
from digitdet.errors import DataError
from digitdet.model.checkpoint import model_from_checkpoint, model_from_state
from digitdet.model.inference import prepare_for_reading
from digitdet.model.line import load_line_reader
from digitdet.model.packed import bundled_reader_path, bundled_reader_paths, load_packed
from digitdet.reading.grouping import Candidate
from digitdet.reading.routing import ReaderPair
from digitdet.reading.scan import for_inference, takes_bytes


@dataclass
class Reading:
    file: str
    number: str | None = None
    confidence: float = 0.0
    digits: list = field(default_factory=list)  # reading.grouping.Digit of every digit found
    candidates: list[Candidate] = field(default_factory=list)
    error: str | None = None
    ms: float = 0.0

    def to_json(self) -> dict:
        out = {"file": self.file, "number": self.number, "confidence": round(float(self.confidence), 4),
               "digits": [d.to_json() for d in self.digits],
               "candidates": [c.to_json() for c in self.candidates], "ms": round(self.ms, 1)}
        if self.error is not None:
            out["error"] = self.error
        return out


def load_model(checkpoint: str | Path | None = None, overrides=(), device: str | torch.device = "cpu"):
    """(cfg, model in eval mode, prepared for reading: norms folded, stem in bands, channels-last
    (model.inference.prepare_for_reading)). No
    checkpoint: the bundled reader, loaded with weights_only=True: its whole-photo and close-up readers as
    a reading.routing.ReaderPair (predict.close_frac=null: the first alone), with the line recogniser when
    it is shipped (predict.line_margin=null: without); reading.scan.for_inference
    makes either a detector."""
    if checkpoint is not None:
        cfg, model, _ = model_from_checkpoint(checkpoint, tuple(overrides), device=device)
        prepare_for_reading(model)
        return cfg, model

    def packed(path: Path):
        cfg, model = model_from_state(load_packed(path), tuple(overrides), device, where=str(path))
        prepare_for_reading(model)
        return cfg, model

    cfg, model = packed(bundled_reader_path())
    # the overrides may set close_frac or line_margin to null
    close = bundled_reader_paths(cfg.predict.close_frac, cfg.predict.line_margin)[1:]
    if not close:
        return cfg, model
    close_cfg, close_model = packed(close[0])
    line = load_line_reader(close[1]).to(device) if len(close) > 1 else None
    return cfg, ReaderPair(model, close_model, close_cfg, line)


class Reader:
    """Reads house numbers from images with one model loaded once (see the module doc)."""

    def __init__(self, checkpoint: str | Path | None = None, *, overrides=(), device: str | None = None,
                 scan: str | None = None) -> None:
        from digitdet.data.transforms import build_transforms

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.cfg, model = load_model(checkpoint, overrides, self.device)
        self.source = (str(checkpoint) if checkpoint is not None else
                       "bundled:" + "+".join(p.stem for p in bundled_reader_paths(self.cfg.predict.close_frac,
                                                                                  self.cfg.predict.line_margin)))
        if scan is not None:  # predict.scan: "cascade", "pyramid" or "single" (default: the config's)
            self.cfg = load_config(base=self.cfg.to_dict(), overrides=[f"predict.scan={scan}"])
        self.detector = for_inference(model, self.cfg)
        # The image goes in as bytes where the scan makes each view float itself (reading.scan.takes_bytes):
        # the same readings, and a 4 MP photo waits in 12 MB instead of 48 while it is read.
        self.transforms = build_transforms(self.cfg.data, train=False, keep_bytes=takes_bytes(self.detector))

    def detect(self, image) -> dict[str, torch.Tensor]:
        """Detections for one PIL RGB image, boxes in its pixels (xyxy; labels 1..10)."""
        return self._detect(self._tensor(image), image.size)

    def _tensor(self, image) -> torch.Tensor:
        empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64), "image_id": 0}
        return self.transforms(image, empty)[0]

    def _detect(self, tensor: torch.Tensor, image_size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Detections for the image of `image_size` (width, height) made into `tensor` by self.transforms."""
        with torch.inference_mode():
            det = self.detector([tensor.to(self.device)])[0]
        boxes = det["boxes"].float().cpu()
        # The eval transforms may upsample (data.upsample): boxes go back by tensor size over image size,
        # as data/loaders.py's target['scale'] does for datasets.
        sx, sy = tensor.shape[-1] / image_size[0], tensor.shape[-2] / image_size[1]
        if (sx, sy) != (1.0, 1.0):
            boxes = boxes / torch.tensor([sx, sy, sx, sy])
        out = {"boxes": boxes, "scores": det["scores"].float().cpu(), "labels": det["labels"].cpu()}
        if "presence" in det:  # reading.cascade/pyramid measured each glyph's presence in its own view
            out["presence"] = det["presence"].float().cpu()
        return out

    def _detections(self, tensor: torch.Tensor, size: tuple[int, int],
                    original_size: tuple[int, int] | None) -> dict[str, torch.Tensor]:
        """_detect's detections, boxes in the pixels of `original_size` (the file's, when it was downscaled
        on load to `size`) -- what a reading is read from (benchmarks/grouping_rules.py memoises them)."""
        det = self._detect(tensor, size)
        if original_size is not None and original_size != size:
            fx, fy = original_size[0] / size[0], original_size[1] / size[1]
            det["boxes"] = det["boxes"] * torch.tensor([fx, fy, fx, fy])
        return det

    def read_image(self, image, name: str = "<image>", original_size: tuple[int, int] | None = None) -> Reading:
        """Read one PIL RGB image. `original_size` (width, height): the file's size when `image` was
        downscaled on load; boxes are then mapped back to it."""
        t0 = time.perf_counter()
        reading = self._read(self._tensor(image), image.size, name, original_size)
        reading.ms = (time.perf_counter() - t0) * 1000
        return reading

    def _read(self, tensor: torch.Tensor, size: tuple[int, int], name: str,
              original_size: tuple[int, int] | None) -> Reading:
        """read_image's work on the image of `size` (width, height) as self.transforms made it."""
        from digitdet.reading import numbers

        det = self._detections(tensor, size, original_size)
        p = self.cfg.predict
        candidates = numbers.read_candidates(det["boxes"], det["scores"], det["labels"], p.read_thresh,
                                             p.dedup_iou, det.get("presence"))
        digits = [d for c in candidates for d in c.digits]
        best = candidates[0] if candidates else None
        return Reading(name, best.number if best else None, best.confidence if best else 0.0, digits,
                       candidates)

    def load_image(self, path: str | Path):
        """(PIL RGB image, the file's (width, height)) as read_file reads it: downscaled while loading when over
        cfg.load_pixels(), upright by its EXIF orientation (a phone stores a portrait photo sideways: read it,
        and give boxes, the way a viewer shows it). DataError when the file cannot be read."""
        from digitdet.data.images import exif_orientation, image_size, read_image, upright

        size = image_size(Path(path))
        image = read_image(path, self.cfg.load_pixels())
        return upright(image, size, exif_orientation(path))

    def read_file(self, path: str | Path) -> Reading:
        """Read one file; one that cannot be read gives a Reading with `error` (and number None). A photo
        over cfg.load_pixels() (predict.max_pixels after data.upsample) is downscaled while loading (memory),
        its boxes come back in its pixels, upright by its EXIF orientation."""
        t0 = time.perf_counter()
        try:
            image, size = self.load_image(path)
        except DataError as exc:
            return Reading(str(path), error=str(exc))
        tensor, loaded = self._tensor(image), image.size
        del image  # not held while it is read (a 4 MP photo: 12 MB)
        reading = self._read(tensor, loaded, str(path), size)
        reading.ms = (time.perf_counter() - t0) * 1000
        return reading


def image_files(paths: list[str | Path]) -> list[Path]:
    """Files named, and the image files directly inside folders named (as predict lists them:
    data.images.image_files_in), in order."""
    from digitdet.data.images import image_files_in

    out: list[Path] = []
    for p in map(Path, paths):
        out += image_files_in(p) if p.is_dir() else [p]
    return out
