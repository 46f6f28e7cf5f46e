"""Pack a training checkpoint as a shipped reader: float16 weights, the merged config, the tuned reading
threshold and a record of how it was made (loadable with torch.load(weights_only=True)).

    python scripts/pack_reader.py --checkpoint runs/reader/mix/best.pt --data data/reader \
        --out src/digitdet/weights/reader-resnet18-l3.pt
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="the dataset it was trained on (its digitdet-synth.json is recorded)")
    p.add_argument("--out", required=True)
    p.add_argument("--command", default="bash scripts/train_reader.sh",
                   help="the one command that reproduces the file, recorded in its meta")
    args = p.parse_args(argv)
    import torch

    from digitdet.model.packed import pack_reader

    marker = Path(args.data) / "digitdet-synth.json"
    made = json.loads(marker.read_text()) if marker.is_file() else {}
    meta = {"data": {k: made.get(k) for k in ("generator", "seed", "counts", "modes", "letters")},
            "packed": datetime.date.today().isoformat(), "torch": str(torch.__version__),
            "command": args.command}
    packed = pack_reader(args.checkpoint, args.out, meta)
    digest = hashlib.sha256(Path(args.out).read_bytes()).hexdigest()
    size = Path(args.out).stat().st_size / 1e6
    n = sum(v.numel() for v in packed["model"].values())
    print(f"{args.out}: {size:.1f} MB, {n / 1e6:.2f} M weights, reading threshold {packed['read_thresh']:.2f}, "
          f"sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
