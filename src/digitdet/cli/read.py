"""`digitdet read`: the number in each photo, one line per image (or JSON). Parsing and printing only;
the work is in digitdet.reading."""

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
    reader = Reader(a.checkpoint, overrides=tuple(overrides), pyramid=not a.single_scale)
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
    s.add_argument("--single-scale", action="store_true",
                   help="only the model's own scale (fast, for tight crops); default: whole-photo pyramid")
    s.set_defaults(func=_cmd_read)
