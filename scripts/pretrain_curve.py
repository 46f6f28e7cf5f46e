"""What a pretrained trunk is worth: configs/cpu.yaml with the bundled reader's trunk kept frozen (its
default), the same trunk trained, the glyph-pretrained trunk and random weights at several image budgets,
each run scored on the test split.

    python scripts/pretrain_curve.py [--data data/synth] [--budgets 1000 2500 7200 9200] [--out runs/curve]

Every run is a whole schedule (the cosine spans its own budget), seed 0, the demo's data. Finished runs
(OUT/<variant>_<budget>/train_summary.json) are reused. Writes OUT/curve.md (a table) and OUT/curve.png
(test mAP and number accuracy against images seen); `--publish DIR` copies both there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# variant -> (run folder prefix, overrides of cpu.yaml, largest budget run). cpu.yaml keeps the reader's
# trunk frozen; the other starts train their trunk, which makes a step slower, so they stop at 7,200
# images, the budget that fits the demo's 15 minutes when the trunk trains.
VARIANTS = {
    "reader's trunk, frozen (cpu.yaml)": ("readerfrozen", [], None),
    "reader's trunk, trained": ("reader", ["model.frozen_stages=0"], 7200),
    "glyph-pretrained trunk": ("pretrained", ["model.backbone_weights=bundled:glyph-resnet18-l3",
                                              "model.frozen_stages=0"], 7200),
    "random init": ("scratch", ["model.backbone_weights=null", "model.frozen_stages=0"], 7200),
}


def run(variant: str, budget: int, data: Path, out: Path) -> dict:
    import torch

    from digitdet.config import load_config
    from digitdet.model.checkpoint import model_from_checkpoint
    from digitdet.training.evaluate import evaluate_split
    from digitdet.training.fit import fit

    prefix, overrides, _ = VARIANTS[variant]
    folder = out / f"{prefix}_{budget}"
    if not (folder / "train_summary.json").is_file():
        cfg = load_config([ROOT / "configs" / "cpu.yaml"], [*overrides, f"train.max_images={budget}"])
        fit(cfg, data, folder, progress=False)
    summary = json.loads((folder / "train_summary.json").read_text())
    cfg, model, _ = model_from_checkpoint(folder / "best.pt")
    test, _, _ = evaluate_split(model, data, "test", cfg, torch.device("cpu"), progress=False)
    return {"variant": variant, "images": summary["train_images"], "mAP": test["coco"]["AP"],
            "AP50": test["coco"]["AP50"], "number_accuracy": test["number_accuracy"],
            "train_minutes": summary["train_seconds"] / 60, "train_images_per_s": summary["train_images_per_s"]}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, title in ((axes[0], "mAP", "test mAP@[.5:.95]"), (axes[1], "number_accuracy",
                                                                   "test number accuracy")):
        for variant in VARIANTS:
            pts = sorted((r["images"], r[key]) for r in rows if r["variant"] == variant)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=variant)
        ax.set_xlabel("training images seen")
        ax.set_title(title)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT / "data" / "synth"))
    p.add_argument("--budgets", type=int, nargs="+", default=[1000, 2500, 7200, 9200])
    p.add_argument("--out", default=str(ROOT / "runs" / "curve"))
    p.add_argument("--publish", help="also copy curve.md and curve.png into this folder")
    args = p.parse_args(argv)
    import torch

    from digitdet.model.onnx_runtime import cpu_cores, cpu_name

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = []
    for variant, (_, _, largest) in VARIANTS.items():
        for budget in (b for b in args.budgets if largest is None or b <= largest):
            print(f"[curve] {variant}, {budget} images", file=sys.stderr, flush=True)
            rows.append(run(variant, budget, Path(args.data), out))
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {cpu_name()}, {cpu_cores()} cores, torch {torch.__version__}: "
             f"`python scripts/pretrain_curve.py --budgets {' '.join(map(str, args.budgets))}` "
             f"({(time.perf_counter() - t0) / 60:.0f} min, finished runs reused). Test split of `{args.data}` "
             "(500 images); configs/cpu.yaml, seed 0, each budget a whole schedule.", "",
             "| trunk | images seen | test mAP | test AP50 | test number accuracy | train min | train img/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['images']} | {r['mAP']:.3f} | {r['AP50']:.3f} | "
                     f"{r['number_accuracy']:.3f} | {r['train_minutes']:.1f} | {r['train_images_per_s']:.1f} |")
    text = "\n".join(lines) + "\n"
    (out / "curve.md").write_text(text, encoding="utf-8")
    plot(rows, out / "curve.png")
    print(text)
    if args.publish:
        dest = Path(args.publish)
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("curve.md", "curve.png"):
            shutil.copyfile(out / name, dest / f"pretrain_{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
