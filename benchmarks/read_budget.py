"""Where the time of one `digitdet read` goes, stage by stage, on real photos (the cascade's budget).

    python benchmarks/read_budget.py                                  # ../shared/real_signs, 20 photos
    python benchmarks/read_budget.py --data ../shared/real_plaques --n 31 --checkpoint runs/reader/v2/best.pt

Reads each photo with the bundled reader (or --checkpoint) once to warm up, then again timed, and prints
the mean milliseconds per photo of: loading (decode, EXIF, downscale), the eval transforms, each finder
view by rank (the photo's own size, then halved), the reading views run (how many on average), and the
rest (grouping into numbers, Reading). Timings from a busy host are not comparable: run it alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "real_signs"), help="a folder with images/")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--checkpoint")
    a = p.parse_args(argv)
    from digitdet.data.images import exif_orientation, image_size, read_image, upright
    from digitdet.reading import cascade
    from digitdet.reading.reader import Reader

    reader = Reader(a.checkpoint, scan="cascade")
    detector: cascade.CascadeDetector = reader.detector
    files = sorted((Path(a.data) / "images").iterdir())[: a.n]
    spent: dict[str, list[float]] = defaultdict(list)
    views: list[int] = []
    sizes: dict[int, list[int]] = defaultdict(list)
    real_run = detector.views.run

    def timed_run(tiles):  # one view a call (reading.cascade): finder views first, then reading views
        t0 = time.perf_counter()
        out = real_run(tiles)
        calls.append((tuple(tiles[0].shape[-2:]), (time.perf_counter() - t0) * 1000))
        return out

    detector.views.run = timed_run
    for warm in (True, False):
        for f in files:
            calls: list[tuple[tuple[int, int], float]] = []
            t0 = time.perf_counter()
            size = image_size(f)
            image, _ = upright(read_image(f, reader.cfg.load_pixels()), size, exif_orientation(f))
            t1 = time.perf_counter()
            empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64), "image_id": 0}
            tensor, _ = reader.transforms(image, empty)
            t2 = time.perf_counter()
            reader.read_image(image)
            t3 = time.perf_counter()
            if warm:
                continue
            n_finder = len(cascade.finder_scales(*tensor.shape[-2:], detector.settings))
            spent["load"].append((t1 - t0) * 1000)
            spent["transforms"].append((t2 - t1) * 1000)
            for k, (shape, ms) in enumerate(calls[:n_finder]):
                spent[f"finder view {k}: 1/{2 ** k} of the first (the photo, long side <= 1024)"].append(ms)
                sizes[k].append(shape[0] * shape[1])
            spent["reading views"].append(sum(ms for _, ms in calls[n_finder:]))
            views.append(len(calls) - n_finder)
            model_ms = sum(ms for _, ms in calls)
            # read_image runs the transforms itself (timed apart above) before the views.
            spent["rest (resizing and cutting views, grouping)"].append((t3 - t2 - (t2 - t1)) * 1000 - model_ms)
            spent["total (load + read_image)"].append((t1 - t0 + t3 - t2) * 1000)
    print(f"{len(files)} photos of {a.data} ({reader.source}), mean ms per photo; reading views run: "
          f"{statistics.mean(views):.2f} per photo on average\n")
    print("finder views' mean size: " + ", ".join(f"1/{2 ** k}: {statistics.mean(v) / 1e6:.2f} MP"
                                              for k, v in sorted(sizes.items())) + "\n")
    print("| stage | ms per photo (mean over the photos that have it) | photos |\n|---|---:|---:|")
    for stage, values in spent.items():
        print(f"| {stage} | {statistics.mean(values):.0f} | {len(values)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
