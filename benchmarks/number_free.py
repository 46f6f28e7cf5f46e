"""How often the bundled reader reads a number where there is none: random crops (60-640 px) of the
generator's wall textures (scikit-image's bundled photos: brick, grass, gravel, ...; no digit in any), read
by reader v1 alone and by the pair as shipped (reading/routing.py). Prints how many crops each reads a
number in, and how many the pair re-reads with v2 although v1 read nothing (the routing's tall-detection
rule), per least score of that tall detection.

    python benchmarks/number_free.py [--per-texture 6] [--seed 0]
    python benchmarks/number_free.py --seed 1 --out data/textures1   # the crops as a set, for peers.py/pair_with.py

Accuracy only, no timings.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def crops(per_texture: int, seed: int):
    import numpy as np

    from digitdet.data.synth import style as sty

    rng = np.random.default_rng(seed)
    for t in sty.textures():
        im = t.convert("RGB")
        for _ in range(per_texture):
            w = int(rng.integers(60, min(im.width, 640)))
            h = int(rng.integers(40, min(im.height, 480)))
            x, y = int(rng.integers(0, im.width - w + 1)), int(rng.integers(0, im.height - h + 1))
            yield im.crop((x, y, x + w, y + h))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-texture", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write the crops as a set (images/N.png + numbers.csv, truth -1) and stop")
    args = p.parse_args(argv)
    if args.out:
        from blank_crops import write_set  # benchmarks/blank_crops.py: the same layout

        return write_set(args.out, ((im, f"texture crop {i}") for i, im in
                                    enumerate(crops(args.per_texture, args.seed), 1)))
    import torch

    from digitdet.reading.reader import Reader

    torch.set_num_threads(2)
    v1, pair = Reader(overrides=("predict.close_frac=null",)), Reader()
    close_frac = pair.cfg.predict.close_frac
    floors = (0.05, 0.3, 0.5)
    n = v1_read = pair_read = 0
    rereads = dict.fromkeys(floors, 0)
    for crop in crops(args.per_texture, args.seed):
        n += 1
        got = v1.read_image(crop)
        v1_read += got.number is not None
        pair_read += pair.read_image(crop).number is not None
        if got.number is None:
            det = v1.detect(crop)
            tall = det["boxes"][:, 3] - det["boxes"][:, 1] >= close_frac * crop.height
            for f in floors:
                rereads[f] += bool((tall & (det["scores"] >= f)).any())
    print("| number-free crops | v1 reads a number | the pair reads a number | "
          + " | ".join(f"v1 read none, re-read (tall detection score >= {f})" for f in floors) + " |")
    print("|---:|---:|---:|" + "---:|" * len(floors))
    print(f"| {n} | {v1_read} | {pair_read} | " + " | ".join(str(rereads[f]) for f in floors) + " |")
    print(f"\n*{datetime.date.today()}; `python benchmarks/number_free.py "
          f"{' '.join(argv if argv is not None else sys.argv[1:])}`*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
