"""`digitdet read`: the number in each photo, one line per image (or JSON); `digitdet predict`: pred.json and
pred.csv for a folder. Parsing and printing only; the work is in digitdet.reading."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _split(items: list[str]) -> tuple[list[str], list[str]]:
    """Paths, and section.key=value overrides (an existing file is always a path)."""
    paths, overrides = [], []
    for item in items:
        key, sep, _ = item.partition("=")
        is_override = sep and "." in key and "/" not in key and not Path(item).exists()
        (overrides if is_override else paths).append(item)
    return paths, overrides


def _cmd_read(a: argparse.Namespace) -> int:
    from digitdet.errors import DigitdetError
    from digitdet.reading.reader import Reader, image_files

    t0 = time.perf_counter()
    paths, overrides = _split(a.items)
    if not paths:  # every item parsed as an override: without this, "no image files in " (nothing named)
        named = " and ".join(overrides)
        looks = "looks like a section.key=value override" if len(overrides) == 1 else \
            "look like section.key=value overrides"
        raise DigitdetError(f"{named} {looks}; read needs at least one image path "
                            f"(e.g. digitdet read house.jpg {' '.join(overrides)})")
    files = image_files(paths)
    if not files:
        raise DigitdetError(f"no image files in {', '.join(paths)}")
    if a.show and len(files) > 1:
        raise DigitdetError("--show draws one image: give one file")
    reader = Reader(a.checkpoint, overrides=tuple(overrides), scan="single" if a.single_scale else a.scan)
    readings, failed = [], 0
    for f in files:
        r = reader.read_file(f)
        readings.append(r)
        if r.error:
            failed += 1
            print(f"digitdet: warning: skipped {r.error}", file=sys.stderr)
        elif not a.json:
            print(f"{r.file}\t{r.number or ''}\t{r.confidence:.2f}", flush=True)
        if a.show and not r.error:
            from digitdet.data.images import exif_orientation, read_image, upright
            from digitdet.reading.show import save_reading

            image, _ = upright(read_image(f), (0, 0), exif_orientation(f))  # as the reader saw it
            save_reading(image, r, a.show)
    if a.json:
        print(json.dumps([r.to_json() for r in readings], indent=1))
    if not a.quiet:
        print(f"{len(files) - failed} read, {failed} skipped in {time.perf_counter() - t0:.1f} s "
              f"({reader.source})", file=sys.stderr)
    return 0 if failed < len(files) else 2


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("read", help="read the house number in photos (the bundled reader unless --checkpoint)")
    s.add_argument("items", nargs="+", metavar="PATH",
                   help="image files and/or folders of images (and section.key=value overrides)")
    s.add_argument("--json", action="store_true", help="a JSON list: number, confidence, digits, candidates")
    s.add_argument("--checkpoint", help="a digitdet checkpoint (default: the reader shipped in the package)")
    s.add_argument("--show", metavar="OUT.png", help="draw the boxes, digits and number of the (one) image")
    s.add_argument("--scan", choices=("cascade", "pyramid", "single"),
                   help="whole-photo detection (predict.scan): cascade (default) finds the number and reads it at "
                        "the model's scale; pyramid runs every scale and tile (slower); single: the model's own "
                        "scale only (tight crops)")
    s.add_argument("--single-scale", action="store_true", help="the same as --scan single")
    s.set_defaults(func=_cmd_read)


def _cmd_predict(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from digitdet.errors import DigitdetError

    ray_only = [f"--{k.replace('_', '-')}" for k in ("address", "workers", "worker_cpus", "worker_gpus")
                if getattr(a, k) is not None]
    if a.engine == "local" and ray_only:
        raise DigitdetError(f"{', '.join(ray_only)}: for --engine ray only (the local engine runs in this process)")
    if a.engine == "ray" and a.onnx:
        raise DigitdetError("--onnx runs with --engine local only")
    if a.batch_size is not None and a.batch_size < 1:
        raise DigitdetError(f"--batch-size must be at least 1 (got {a.batch_size})")
    overrides = tuple(a.overrides) + ((f"predict.batch_size={a.batch_size}",) if a.batch_size else ())

    def warn(reason: str) -> None:  # one line per file that cannot be read; above any progress bar
        tqdm.write(f"digitdet: warning: skipped {reason}", file=sys.stderr)

    out = Path(a.out)
    written = f"{out / 'pred.json'}, {out / 'pred.csv'}" + ("" if a.ann else f", {out / 'images.json'}")
    if a.engine == "ray":
        from digitdet.reading.ray_engine import MANIFEST, predict_folder_ray

        try:
            summary = predict_folder_ray(a.checkpoint, a.images, a.out, ann_file=a.ann, overrides=overrides,
                                         address=a.address, workers=a.workers, worker_cpus=a.worker_cpus or 1,
                                         worker_gpus=a.worker_gpus, visualize=a.visualize, progress=not a.quiet,
                                         warn=warn)
        except KeyboardInterrupt:
            print(f"digitdet: interrupted; the batches read so far are kept in {out / MANIFEST}: the same "
                  "command reads the rest", file=sys.stderr)
            return 130
        earlier = f"{summary['resumed']} images read by an earlier run"
        written += f", {out / 'numbers.parquet'} (" + (f"{summary['workers']} Ray workers" + (
            f"; {earlier})" if summary["resumed"] else ")") if summary["workers"] else f"all {earlier})")
    else:
        from digitdet.reading.predict import predict_folder

        runner = None
        if a.onnx:
            from digitdet.model.onnx_runtime import onnx_runner

            runner = onnx_runner(a.onnx, progress=not a.quiet)
        summary = predict_folder(a.checkpoint, a.images, a.out, ann_file=a.ann, overrides=overrides,
                                 visualize=a.visualize, runner=runner, progress=not a.quiet, warn=warn)
    skipped = len(summary["skipped"])
    print(f"{summary['read']} images read, {skipped} skipped (cannot be read: pred.csv row -1), "
          f"{summary['boxes']} boxes, {summary['no_digit']} without digits -> {written}")
    if summary["read"] == 0:
        print(f"digitdet: error: none of the {summary['images']} images in {a.images} could be read",
              file=sys.stderr)
        return 2
    return 0


def register_predict(sub: argparse._SubParsersAction) -> None:
    """`digitdet predict`: pred.json and pred.csv for a folder (reading.predict; reading.ray_engine)."""
    s = sub.add_parser("predict", help="write pred.json and pred.csv for a folder of images")
    s.add_argument("--checkpoint", help="a digitdet checkpoint (default: the reader shipped in the package)")
    s.add_argument("--images", required=True, help="a folder of images, or a text file listing image paths (one "
                                                   "per line, relative to the list's folder)")
    s.add_argument("--out", required=True)
    s.add_argument("--ann", help="COCO json giving the image ids (default: from the file names: integer stems keep "
                                 "theirs, other names get the next ids in name order, listed in OUT/images.json)")
    s.add_argument("--visualize", type=int, default=0, metavar="N", help="gallery of N images")
    s.add_argument("--onnx", help="run this exported model with onnxruntime instead of torch (at the model's "
                                  "own scale: no whole-photo pyramid)")
    s.add_argument("--batch-size", type=int, metavar="B",
                   help="images per model call (predict.batch_size; both engines make the same batches)")
    s.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: Ray Data, a pool of reader processes on this machine "
                        "or a cluster, the same outputs plus numbers.parquet, resumable (needs digitdet[ray]; "
                        "docs/batch.md)")
    s.add_argument("--address", help="ray: join the running Ray cluster at HOST:PORT (or 'auto'); default: start a "
                                     "local Ray for this run")
    s.add_argument("--workers", type=int, metavar="N", help="ray: reader processes, one model each (default: one "
                                                            "per GPU, else one per --worker-cpus CPUs)")
    s.add_argument("--worker-cpus", type=int, metavar="C", help="ray: CPUs (torch threads) per worker (default 1)")
    s.add_argument("--worker-gpus", type=float, metavar="G",
                   help="ray: GPUs per worker (default: 1 on a cluster with GPUs, else 0)")
    s.add_argument("overrides", nargs="*", metavar="section.key=value")
    s.set_defaults(func=_cmd_predict)
