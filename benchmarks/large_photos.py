"""Photos read large: each photo enlarged (bicubic) until its long side is over the finder's 1024 px, read by the
bundled reader in memory, and the numbers, reading time and the process's peak RSS written as JSON. Run it with
two versions of the code to see that a change to how large photos are scanned reads the same:

    python benchmarks/large_photos.py new.json '../shared/real_signs/images/*' 'data/val73/scene/valid/*.png'
    git worktree add /tmp/base HEAD~1
    PYTHONPATH=/tmp/base/src python benchmarks/large_photos.py old.json '../shared/real_signs/images/*' ...
    python benchmarks/large_photos.py --compare old.json new.json

A photo already over 1024 px is read as it is; smaller ones are enlarged by the smallest whole factor that takes
them over (a 480x640 sign photo: x2). Timings from a busy host are not comparable: run it alone on a quiet one.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

from peers import own_peak_kb  # benchmarks/ is the script's folder


def peak_rss_mb() -> float:
    return own_peak_kb() / 1024


def read_all(out: Path, patterns: list[str]) -> None:
    import torch
    from PIL import Image
    from tqdm import tqdm

    from digitdet.reading.cascade import CascadeSettings
    from digitdet.reading.reader import Reader

    finder_long = CascadeSettings().finder_long
    torch.set_num_threads(2)
    reader = Reader()
    files = [f for pattern in patterns for f in sorted(glob.glob(pattern))]
    numbers, seconds = {}, 0.0
    for f in tqdm(files, unit="photo"):
        image = Image.open(f).convert("RGB")
        k = finder_long // max(image.size) + 1 if max(image.size) <= finder_long else 1
        image = image.resize((image.width * k, image.height * k), Image.BICUBIC)
        t0 = time.perf_counter()
        numbers[f] = reader.read_image(image).number
        seconds += time.perf_counter() - t0
    out.write_text(json.dumps({"numbers": numbers, "read_s": seconds, "peak_rss_mb": peak_rss_mb()}))
    print(f"{len(numbers)} photos read in {seconds:.1f} s, peak RSS {peak_rss_mb():.0f} MB -> {out}")


def compare(a: Path, b: Path) -> int:
    old, new = (json.loads(p.read_text()) for p in (a, b))
    differ = [(f, old["numbers"][f], new["numbers"].get(f)) for f in old["numbers"]
              if old["numbers"][f] != new["numbers"].get(f)]
    print(f"{len(old['numbers'])} photos; {len(differ)} read differently")
    for f, x, y in differ:
        print(f"  {f}: {x} -> {y}")
    print(f"read s {old['read_s']:.1f} -> {new['read_s']:.1f}; peak RSS MB {old['peak_rss_mb']:.0f} -> "
          f"{new['peak_rss_mb']:.0f}")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="JSON to write (with --compare: the old run's JSON)")
    p.add_argument("patterns", nargs="+", help="photo globs (with --compare: the new run's JSON)")
    p.add_argument("--compare", action="store_true", help="compare two runs' JSON instead of reading")
    args = p.parse_args(argv)
    if args.compare:
        return compare(Path(args.out), Path(args.patterns[0]))
    read_all(Path(args.out), args.patterns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
