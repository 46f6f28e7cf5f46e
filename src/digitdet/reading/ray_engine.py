"""Batch reading on Ray Data (`digitdet predict --engine ray`, docs/batch.md): the local engine's pred.json,
pred.csv and images.json (reading.predict.predict_folder) for millions of photos on one machine or a
cluster, plus numbers.parquet (image_id, file, number, confidence, the number's digit boxes).

    folder | list file | COCO json -> (image_id, path)         predict.image_entries, on the driver
      -> Ray tasks read the headers                           data.folder.ImageFolder's checks
      -> the plan: size-grouped batches of predict.batch_size data.loaders.size_grouped_batches
      -> map_batches on an actor pool, one model per actor    predict.dataset_kwargs, detect, model_runner
      -> finished batches saved as OUT/ray-manifest/parts/*.parquet, each atomically
      -> pred.json, pred.csv (predict.write_predictions, streamed), images.json, numbers.parquet

A batch's images run through the detector together, so the plan makes exactly the local engine's batches,
and each actor runs them through the local engine's code: the same bytes out when the torch thread count
matches (--worker-cpus; CPU kernels sum in a thread-dependent order). Resume: run.json records what the run
reads; the same command over a partly finished OUT reads only the batches no part holds. Ray and pyarrow
(the `ray` extra) are imported only when this engine runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from digitdet import io
from digitdet.data.folder import ImageFolder, ImageRecord
from digitdet.data.loaders import size_grouped_batches
from digitdet.errors import DigitdetError
from digitdet.model.packed import bundled_reader_paths
from digitdet.reading import numbers, predict
from digitdet.reading.reader import load_model

MANIFEST = "ray-manifest"  # OUT/ray-manifest/: run.json, plan.parquet, parts/part-NNNNNN.parquet
PART_IMAGES = 2000  # finished batches are saved once they hold this many images ...
PART_SECONDS = 60.0  # ... or this long after the last save (what an interrupted run keeps)
CALL_IMAGES = 32  # images per actor call (whole batches)
SCAN_FILES = 256  # headers read per Ray task


def require_ray() -> tuple[Any, Any, Any]:
    """(ray, pyarrow, pyarrow.parquet), or a DigitdetError saying how to install them (one line)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        import ray
        import ray.data  # noqa: F401  (Ray without its data library: `pip install ray` alone)
    except ImportError as exc:
        raise DigitdetError(f"--engine ray needs the ray extra: pip install 'digitdet[ray]' "
                            f"(cannot import {exc.name})") from None
    return ray, pa, pq


def part_schema(pa: Any) -> Any:
    """One row per image of a batch: its detections (xyxy boxes flattened, original pixels) and reading, or
    the error that skipped it. `pos`: its place in the batch's detections (-1 for a skipped image)."""
    digit = pa.struct([("digit", pa.int8())] + [(k, pa.float32()) for k in ("score", "x0", "y0", "x1", "y1")])
    return pa.schema([("batch", pa.int64()), ("pos", pa.int64()), ("image_id", pa.int64()),
                      ("boxes", pa.list_(pa.float32())), ("scores", pa.list_(pa.float32())),
                      ("labels", pa.list_(pa.int64())), ("presence", pa.list_(pa.float32())),
                      ("error", pa.string()), ("number", pa.string()), ("confidence", pa.float64()),
                      ("digits", pa.list_(digit))])


def read_headers(table: Any) -> Any:
    """Ray task: (image_id, file) rows + width, height, error (ImageFolder's checks: a one-line reason)."""
    import pyarrow as pa

    rows = table.to_pylist()
    folder = ImageFolder(".", [(r["image_id"], Path(r["file"])) for r in rows])
    return pa.Table.from_pylist(
        [{"image_id": r.image_id, "file": str(r.path), "width": r.size[0] if r.size else None,
          "height": r.size[1] if r.size else None, "error": r.error} for r in folder.records],
        schema=pa.schema([("image_id", pa.int64()), ("file", pa.string()), ("width", pa.int64()),
                          ("height", pa.int64()), ("error", pa.string())]))


class BatchReader:
    """A Ray actor: the model loaded once, then whole batches of the plan through the local engine's code
    (ImageFolder with predict.dataset_kwargs, predict.detect with predict.model_runner)."""

    def __init__(self, checkpoint: str | None, overrides: tuple[str, ...], threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # Ray hides unasked GPUs
        self.cfg, model = load_model(checkpoint, overrides, device=self.device)
        self.runner = predict.model_runner(model, self.cfg, self.device, progress=False)
        self.kwargs = predict.dataset_kwargs(self.cfg)

    def __call__(self, table: Any) -> Any:
        import pyarrow as pa

        rows = [r for row in table.to_pylist() for r in self.read_batch(row["batch"], row["ids"], row["files"])]
        return pa.Table.from_pylist(rows, schema=part_schema(pa))

    def read_batch(self, batch: int, ids: list[int], files: list[str]) -> list[dict]:
        dataset = ImageFolder(".", list(zip(ids, map(Path, files))), **self.kwargs)
        errors = {r.image_id: r.error for r in dataset.records if r.error is not None}
        dets = predict.detect(dataset, self.runner, self.cfg, 0, errors.__setitem__)
        p = self.cfg.predict
        rows = []
        for pos, det in enumerate(dets):
            presence = det.get("presence")
            cands = numbers.read_candidates(det["boxes"], det["scores"], det["labels"], p.read_thresh,
                                            p.dedup_iou, presence)
            best = cands[0] if cands else None
            rows.append({"batch": batch, "pos": pos, "image_id": det["image_id"],
                         "boxes": det["boxes"].reshape(-1).tolist(), "scores": det["scores"].tolist(),
                         "labels": det["labels"].tolist(), "presence": None if presence is None else presence.tolist(),
                         "number": best.number if best else None, "confidence": best.confidence if best else None,
                         "digits": [dict(zip(("x0", "y0", "x1", "y1"), d.box), digit=d.digit, score=d.score)
                                    for d in best.digits] if best else []})
        rows += [{"batch": batch, "pos": -1, "image_id": i, "error": errors[i]} for i in ids if i in errors]
        return rows


def run_record(cfg: Any, checkpoint: str | Path | None, entries: list[tuple[int, Path]]) -> dict:
    """What a run reads (config, weights files, file list): a resumed run must match it exactly, else its
    parts would mix two answers. `entries` with absolute paths."""
    weights = [Path(checkpoint)] if checkpoint is not None else bundled_reader_paths(
        cfg.predict.close_frac, cfg.predict.line_margin)
    listing = hashlib.sha256("".join(f"{i}\t{p}\n" for i, p in entries).encode()).hexdigest()
    model = [{"weights": str(w.absolute()), "bytes": w.stat().st_size, "mtime_ns": w.stat().st_mtime_ns} for w in
             weights]
    return {"config": dataclasses.asdict(cfg), "files": len(entries), "listing_sha256": listing, "model": model}


def _start_ray(ray: Any, address: str | None, cpus: int) -> bool:
    """Join the cluster at `address`, else start a local Ray of `cpus` CPUs; False: this process had joined one."""
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # progress: our bars, in files and images
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"
    started = not ray.is_initialized()
    where = f"join the Ray cluster at {address}" if address else "start a local Ray"
    host, _, port = (address or "").removeprefix("ray://").rpartition(":")
    try:
        if started and port.isdigit():  # Ray itself waits minutes for an address where nothing listens
            socket.create_connection((host, int(port)), timeout=10).close()
        if started:
            ray.init(address=address or "local", num_cpus=None if address else cpus, include_dashboard=False,
                     logging_level=logging.WARNING)
    except (OSError, RuntimeError, ValueError) as exc:  # ConnectionError is an OSError
        raise DigitdetError(f"cannot {where}: {str(exc).strip().splitlines()[0]}" + (
            " (is its head up: `ray start --head`? with token authentication, RAY_AUTH_MODE=token and its token "
            "here too: docs/batch.md)" if address else "")) from None
    ray.data.DataContext.get_current().enable_progress_bars = False
    return started


def _pool(ray: Any, workers: int | None, cpus: int, gpus: float | None) -> tuple[int, float]:
    """(actors, GPUs per actor): by default one actor per GPU where the cluster has GPUs, else per `cpus`
    CPUs; a pool the cluster cannot hold is refused here rather than waited for."""
    have = ray.cluster_resources()
    gpus = (1.0 if have.get("GPU", 0) >= 1 else 0.0) if gpus is None else float(gpus)
    if workers is None:
        workers = int(have.get("GPU", 0) // gpus) if gpus else int(have.get("CPU", 1) // cpus)
    workers = max(1, workers)
    for name, need in (("CPU", workers * cpus), ("GPU", workers * gpus)):
        if need > have.get(name, 0) + 1e-9:
            raise DigitdetError(f"{workers} workers need {need:g} {name}s (--worker-cpus {cpus}, --worker-gpus "
                                f"{gpus:g} each); the Ray cluster has {have.get(name, 0):g}")
    return workers, gpus


def _load_plan(manifest: Path, run: dict, pq: Any) -> Any | None:
    """The saved plan when run.json matches `run`; None (and a clean manifest) when there is none."""
    saved = manifest / "run.json"
    if not saved.is_file():
        shutil.rmtree(manifest / "parts", ignore_errors=True)  # parts without a record: of an unknown run
        return None
    old = json.loads(saved.read_text())
    if old != json.loads(json.dumps(run)):
        differs = ", ".join(k for k in run if old.get(k) != json.loads(json.dumps(run[k]))) or "format"
        raise DigitdetError(f"{manifest} records a run of another command (it differs in: {differs}); use "
                            f"another --out, or delete {manifest} to start over")
    return pq.read_table(manifest / "plan.parquet")


def make_plan(ray: Any, pa: Any, entries: list[tuple[int, Path]], batch_size: int,
              progress: bool) -> Any:
    """Every file with its header (width, height or the error skipping it), its batch (-1 when skipped) and
    slot in it: the batches of data.loaders.size_grouped_batches over the readable files in id order."""
    from tqdm import tqdm

    ds = ray.data.from_items([{"image_id": i, "file": str(p)} for i, p in entries],
                             override_num_blocks=max(1, min(2000, -(-len(entries) // SCAN_FILES))))
    tables = []
    heads = ds.map_batches(read_headers, batch_size=SCAN_FILES, batch_format="pyarrow")
    with tqdm(total=len(entries), desc="headers", unit="file", disable=not progress, leave=False) as bar:
        for t in heads.iter_batches(batch_size=None, batch_format="pyarrow"):
            tables.append(t)
            bar.update(t.num_rows)
    heads = pa.concat_tables(tables).sort_by("image_id").to_pydict()
    ok = [k for k, e in enumerate(heads["error"]) if e is None]

    class Sizes:  # what size_grouped_batches reads of a dataset
        sizes = [(heads["width"][k], heads["height"][k]) for k in ok]

        def __len__(self) -> int:
            return len(ok)

    batch, slot = [-1] * len(heads["image_id"]), [-1] * len(heads["image_id"])
    for b, members in enumerate(size_grouped_batches(Sizes(), batch_size)):
        for s, k in enumerate(members):
            batch[ok[k]], slot[ok[k]] = b, s
    return pa.table({**heads, "batch": pa.array(batch, pa.int64()), "slot": pa.array(slot, pa.int64())})


def _batches(plan: dict, todo: set[int]) -> list[dict]:
    """The rows of the inference dataset: one per batch to do, its files in slot order."""
    members: dict[int, list[tuple[int, int, str]]] = {}
    for i, f, b, s in zip(plan["image_id"], plan["file"], plan["batch"], plan["slot"]):
        if b in todo:
            members.setdefault(b, []).append((s, i, f))
    return [{"batch": b, "ids": [i for _, i, _ in sorted(m)], "files": [f for _, _, f in sorted(m)]}
            for b, m in sorted(members.items())]


def read_parts(manifest: Path, pa: Any, pq: Any) -> Any:
    files = sorted((manifest / "parts").glob("part-*.parquet"))
    return pa.concat_tables([part_schema(pa).empty_table()] + [pq.read_table(f, schema=part_schema(pa)) for f in files])


def _run_batches(ray: Any, pa: Any, pq: Any, manifest: Path, rows: list[dict], reader_args: tuple, pool: tuple,
                 progress: bool, warn: Callable[[str], None], on_part: Callable[[int], None] | None,
                 part_images: int, part_seconds: float) -> int:
    """Read `rows` (batches) on the actor pool, saving finished batches as parts; returns the images read."""
    from tqdm import tqdm

    workers, gpus = pool
    expected = {r["batch"]: len(r["ids"]) for r in rows}
    parts = manifest / "parts"
    seq = len(list(parts.glob("part-*.parquet"))) if parts.is_dir() else 0
    pending: dict[int, list[dict]] = {}
    ready: list[dict] = []
    saved, last = 0, time.monotonic()

    def save() -> None:
        nonlocal seq, saved, last, ready
        if ready:
            seq += 1
            with io.atomic_path(parts / f"part-{seq:06d}.parquet") as tmp:
                pq.write_table(pa.Table.from_pylist(ready, schema=part_schema(pa)), tmp)
            saved, ready, last = saved + len(ready), [], time.monotonic()
            if on_part is not None:
                on_part(saved)

    # Whole batches per call, CALL_IMAGES images or so, spread over every worker even in a small run.
    calls = max(1, min(CALL_IMAGES // max(expected.values()), -(-len(rows) // workers)))
    ds = ray.data.from_items(rows, override_num_blocks=min(-(-len(rows) // calls), 5000))
    out = ds.map_batches(BatchReader, fn_constructor_args=reader_args, batch_size=calls, batch_format="pyarrow",
                         compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=reader_args[2],
                         num_gpus=gpus or None)
    bar = tqdm(total=sum(expected.values()), desc=f"read ({workers} workers)", unit="img", disable=not progress)
    tables = iter(out.iter_batches(batch_size=None, batch_format="pyarrow"))
    try:
        for table in tables:
            for row in table.to_pylist():
                pending.setdefault(row["batch"], []).append(row)
                if len(pending[row["batch"]]) == expected[row["batch"]]:
                    done = pending.pop(row["batch"])
                    for error in (r["error"] for r in done if r["error"] is not None):
                        warn(error)
                    ready += done
                    bar.update(len(done))
            if len(ready) >= part_images or time.monotonic() - last >= part_seconds:
                save()
    finally:  # interrupted too: what is finished is kept for the next run, the actors are let go
        save()
        bar.close()
        if hasattr(tables, "close"):
            tables.close()
    return saved


def _detections(parts: Any, chunk: int = 10_000) -> Iterator[dict]:
    """The read images' detections in the local engine's order (batch, then place in it), a chunk at a time."""
    for start in range(0, parts.num_rows, chunk):
        for r in parts.slice(start, chunk).to_pylist():
            det = {"image_id": r["image_id"], "boxes": np.asarray(r["boxes"], np.float32).reshape(-1, 4),
                   "scores": np.asarray(r["scores"], np.float32), "labels": np.asarray(r["labels"], np.int64)}
            if r["presence"] is not None:
                det["presence"] = np.asarray(r["presence"], np.float32)
            yield det


def write_outputs(out: Path, plan: Any, parts: Any, cfg: Any, image_dir: Path, listed: dict[int, Path],
                  with_images_json: bool, visualize: int, pa: Any, pq: Any) -> dict:
    """pred.json, pred.csv (predict.write_predictions), images.json (ImageFolder.images_json), numbers.parquet
    and the gallery (predict.gallery), each written atomically; returns predict_folder's summary."""
    import pyarrow.compute as pc

    p = plan.to_pydict()
    skipped = {i: e for i, e in zip(p["image_id"], p["error"]) if e is not None}
    failed = parts.filter(pc.is_valid(parts["error"]))
    skipped.update(zip(failed["image_id"].to_pylist(), failed["error"].to_pylist()))
    read_ok = parts.filter(pc.is_null(parts["error"])).sort_by([("batch", "ascending"), ("pos", "ascending")])
    first = [i for i, e in zip(p["image_id"], p["error"]) if e is None][:visualize]  # as predict.gallery picks
    shown, boxes = [], [0]

    def stream() -> Iterator[dict]:
        for det in _detections(read_ok):
            boxes[0] += int((det["scores"] >= cfg.predict.score_thresh).sum())
            shown.extend([det] if visualize and det["image_id"] in first else [])
            yield det

    read = predict.write_predictions(out, stream(), cfg, unread=skipped)
    folder = ImageFolder(image_dir, [])
    folder.records = [ImageRecord(i, listed[i], (w, h) if e is None else None, e)  # the plan's headers
                      for i, w, h, e in zip(p["image_id"], p["width"], p["height"], p["error"])]
    if with_images_json:
        io.write_json(out / "images.json", folder.images_json(set(skipped)))
    files = dict(zip(p["image_id"], p["file"]))
    unread = pa.table({"image_id": pa.array(list(skipped), pa.int64()), "error": pa.array(list(skipped.values()))})
    table = pa.concat_tables([read_ok.select(["image_id", "number", "confidence", "digits", "error"]), unread],
                             promote_options="default").sort_by("image_id")
    table = table.add_column(1, "file", pa.array([files[i] for i in table["image_id"].to_pylist()], pa.string()))
    with io.atomic_path(out / "numbers.parquet") as tmp:
        pq.write_table(table, tmp)
    if visualize:  # what predict.gallery reads of a dataset: its first readable images
        size = {r.image_id: r.size for r in folder.records}
        folder.image_ids, folder.file_paths, folder.sizes = first, [listed[i] for i in first], [size[i] for i in first]
        predict.gallery(folder, shown, read, out / "gallery.png", visualize, cfg)
    no_digit = sum(read[i] == numbers.NO_NUMBER for i in read_ok["image_id"].to_pylist())
    return {"images": len(p["image_id"]), "read": read_ok.num_rows, "skipped": [skipped[i] for i in sorted(skipped)],
            "boxes": boxes[0], "no_digit": no_digit,
            "read_thresh": cfg.predict.read_thresh, "score_thresh": cfg.predict.score_thresh}


def predict_folder_ray(checkpoint: str | Path | None, images: str | Path, out_dir: str | Path, *,
                       ann_file: str | Path | None = None, overrides: tuple[str, ...] = (), address: str | None = None,
                       workers: int | None = None, worker_cpus: int = 1, worker_gpus: float | None = None,
                       visualize: int = 0, progress: bool = True, warn: Callable[[str], None] | None = None,
                       on_part: Callable[[int], None] | None = None, part_images: int = PART_IMAGES,
                       part_seconds: float = PART_SECONDS) -> dict:
    """predict_folder's outputs and summary on Ray Data, plus OUT/numbers.parquet (module doc). `address`: a
    cluster to join, else a local Ray of `workers` x `worker_cpus` CPUs is started for the run (a Ray this
    process already joined is used as it is). `workers`: actors, one model each (default: one per GPU, else
    per `worker_cpus` CPUs); `worker_cpus`: torch threads per actor; `worker_gpus`: GPUs per actor (default 1
    on a cluster with GPUs). A file that cannot be read goes to `warn` (one line) and gets a -1 row. Finished
    batches are saved every `part_images` images or `part_seconds` s (then `on_part(images saved)`); the
    summary adds 'resumed' (images read by an earlier run) and 'workers' (0: Ray was not needed)."""
    ray, pa, pq = require_ray()
    if worker_cpus < 1 or (workers is not None and workers < 1) or (worker_gpus or 0) < 0:
        raise DigitdetError("--workers and --worker-cpus must be at least 1, --worker-gpus at least 0")
    warn = warn or (lambda reason: None)
    out = Path(out_dir)
    manifest = out / MANIFEST
    cfg, _ = load_model(checkpoint, overrides)  # what every actor builds; a bad checkpoint fails before Ray
    image_dir, entries = predict.image_entries(images, ann_file)
    cwd = Path.cwd()  # workers get absolute paths (on a cluster: shared storage mounted at the same place)
    absolute = [(i, cwd / f) for i, f in entries]
    run = run_record(cfg, checkpoint, absolute)
    plan = _load_plan(manifest, run, pq)
    parts = read_parts(manifest, pa, pq)
    started, n_workers, resumed = False, 0, 0
    try:
        if plan is None or _todo(plan, parts):
            started = _start_ray(ray, address, (workers or max(1, (os.cpu_count() or 1) // worker_cpus)) * worker_cpus)
            n_workers, gpus = _pool(ray, workers, worker_cpus, worker_gpus)
        if plan is None:
            plan = make_plan(ray, pa, absolute, cfg.predict.batch_size, progress)
            with io.atomic_path(manifest / "plan.parquet") as tmp:
                pq.write_table(plan, tmp)
            io.write_json(manifest / "run.json", run)  # last: it makes the plan and the parts resumable
        for e in plan["error"].to_pylist() + parts["error"].to_pylist():  # bad headers, earlier bad pixels
            if e is not None:
                warn(e)
        todo = _todo(plan, parts)
        resumed = sum(b >= 0 and b not in todo for b in plan["batch"].to_pylist())
        if todo:
            n_workers = min(n_workers, len(todo))  # no actor loads a model to wait idle
            ckpt = None if checkpoint is None else str(cwd / checkpoint)
            _run_batches(ray, pa, pq, manifest, _batches(plan.to_pydict(), todo), (ckpt, tuple(overrides),
                         worker_cpus), (n_workers, gpus), progress, warn, on_part, part_images, part_seconds)
    finally:
        if started:
            ray.shutdown()
    parts = read_parts(manifest, pa, pq)
    if _todo(plan, parts):
        raise DigitdetError("some batches came back incomplete from the Ray workers; run the same command again "
                            "to read them")
    summary = write_outputs(out, plan, parts, cfg, image_dir, dict(entries), ann_file is None, visualize, pa, pq)
    return {**summary, "resumed": resumed, "workers": n_workers}


def _todo(plan: Any, parts: Any) -> set[int]:
    """The plan's batches that no part holds whole."""
    got = Counter(parts["batch"].to_pylist())
    return {b for b, n in Counter(plan["batch"].to_pylist()).items() if b >= 0 and got.get(b) != n}
