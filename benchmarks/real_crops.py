"""Real tight crops made from a real photo set: real house numbers' appearance (real_plaques: painted,
cast and cut-out plaques) in the framings users send and the generator's tight and cut modes imitate, for a
development set closer to those than the synthetic ones.

    python benchmarks/real_crops.py ../shared/real_plaques data/real-crops
    python benchmarks/peers.py --sets data/real-crops/cut-left,data/real-crops/square --systems digitdet,rapidocr

Each photo whose number the bundled reader reads right (its number's box is where the crops are cut; no
box annotations exist) gives one image in each variant folder (images/N.jpg + numbers.csv, the layout of
../shared's sets, the same whole number as truth):

- tight: the number's box, padded by PAD of its height on every side;
- cut-left / cut-right: tight, with `--cut` (CUT) of the first / last digit's box width cut off. At 0.2 about
  three quarters of its ink stays: the generator's cut mode (data/synth/compose.py cut_borders) keeps
  0.72-0.95 of a counted digit's ink and never comes near the 50 % its box rule draws the line at; at 0.4 a
  digit with its ink on the cut side (4, 3, 9, 7 cut on the right) is near or under half, where neither the
  truth nor a person is sure;
- square: tight, resized to a square (a crop stretched by an app or a dataset's loader);
- turn-ccw / turn-cw: the photo turned by `--turn` (TURN) degrees about the number's centre, counter-clockwise /
  clockwise, and cut to the box holding the turned tight box (a plaque hung askew, a phone held at an angle;
  the generator turns numbers up to about 35 degrees). Corners from outside the photo take its mean colour.

A development set, like the photos it comes from: measure on it, never tune on it image by image. The
crops are only as good as the reader's boxes, and only photos it already reads are used: it measures the
framing, not whether a number is found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402  (the photo sets, read as peers.py reads them)

PAD = 0.06
CUT = 0.2
TURN = 20.0
VARIANTS = ("tight", "cut-left", "cut-right", "square", "turn-ccw", "turn-cw")


def crop_boxes(box, first, last, size, cut: float = CUT) -> dict[str, tuple[int, int, int, int]]:
    """The variants' crop boxes (left, top, right, bottom; inside the image of `size`) from the number's box and
    its first and last digits' boxes (xyxy pixels)."""
    x0, y0, x1, y1 = box
    pad = PAD * (y1 - y0)
    w, h = size
    tight = (max(0.0, x0 - pad), max(0.0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad))
    left = (first[0] + cut * (first[2] - first[0]), *tight[1:])
    right = (*tight[:2], last[2] - cut * (last[2] - last[0]), tight[3])
    out = {"tight": tight, "cut-left": left, "cut-right": right, "square": tight}
    return {k: tuple(round(v) for v in b) for k, b in out.items()}


def turned_box(box, degrees: float, size) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom; inside the image of `size`) holding xyxy `box` after the image is
    turned `degrees` about the box's centre (PIL's Image.rotate with center=; either way round: a box
    turned about its centre needs the same room both ways)."""
    import math

    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    c, s = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    half_w, half_h = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    dx, dy = half_w * c + half_h * s, half_w * s + half_h * c
    return (round(max(0.0, cx - dx)), round(max(0.0, cy - dy)), round(min(size[0], cx + dx)),
            round(min(size[1], cy + dy)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="a folder with images/ and numbers.csv (e.g. ../shared/real_plaques)")
    p.add_argument("out", help="the variant folders are made in it")
    p.add_argument("--cut", type=float, default=CUT, help="the share of the outer digit's box width cut off")
    p.add_argument("--turn", type=float, default=TURN, help="degrees the turn-ccw and turn-cw variants are turned")
    args = p.parse_args(argv)
    from PIL import Image, ImageStat

    from digitdet.io import atomic_dir, write_text
    from digitdet.reading.reader import Reader

    reader = Reader()
    rows: dict[str, list[tuple[int, str]]] = {v: [] for v in VARIANTS}
    skipped = []
    with atomic_dir(args.out) as out:  # all variants or none
        for v in VARIANTS:
            (out / v / "images").mkdir(parents=True)
        for path, truth in peers.real_set(Path(args.folder)):
            # Loaded once and read as loaded: boxes in the pixels of the image the crops are cut from (a photo
            # over the reader's load budget is downscaled on load; read_file would give the file's pixels).
            image, _ = reader.load_image(path)
            reading = reader.read_image(image, path)
            best = reading.candidates[0] if reading.candidates else None
            if best is None or best.number != truth or best.vertical:
                skipped.append(f"{Path(path).name} (read {reading.number})")
                continue
            digits = sorted(best.digits, key=lambda d: d.box[0])
            i = int(Path(path).stem)
            boxes = crop_boxes(best.box, digits[0].box, digits[-1].box, image.size, args.cut)
            crops = {v: image.crop(b) for v, b in boxes.items()}
            side = max(crops["square"].size)
            crops["square"] = crops["square"].resize((side, side), Image.Resampling.BICUBIC)
            tight = boxes["tight"]
            centre = ((tight[0] + tight[2]) / 2, (tight[1] + tight[3]) / 2)
            fill = tuple(round(c) for c in ImageStat.Stat(image).mean[:3])
            for v, degrees in (("turn-ccw", args.turn), ("turn-cw", -args.turn)):
                turned = image.rotate(degrees, Image.Resampling.BICUBIC, center=centre, fillcolor=fill)
                crops[v] = turned.crop(turned_box(tight, degrees, image.size))
            for v, crop in crops.items():
                crop.save(out / v / "images" / f"{i}.jpg", quality=95)
                rows[v].append((i, truth))
        for v in VARIANTS:
            write_text(out / v / "numbers.csv", "".join(f"{i},{n}\n" for i, n in [("image_id", "true_number"),
                                                                                 *rows[v]]))
    print(f"{len(rows['tight'])} photos x {len(VARIANTS)} variants -> {args.out}"
          + (f"; skipped (not read right): {', '.join(skipped)}" if skipped else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
