"""Shared helpers for the end-to-end tests: a tiny synthetic dataset and a tiny training config."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CPU = ROOT / "configs" / "cpu.yaml"
SVHN4 = ROOT.parent / "shared" / "fixtures" / "svhn4"

# Small enough to train an epoch in seconds on a CPU; same model family as the demo.
TINY = [
    "train.epochs=2", "train.batch_size=4", "train.max_minutes=null", "train.warmup_iters=2",
    "data.workers=0", "model.min_size=[64]", "model.max_size=160",
    "model.rpn_post_nms_top_n_train=64", "model.rpn_post_nms_top_n_test=32",
    "model.box_batch_size_per_image=16", "model.representation_size=64", "predict.batch_size=4",
]


def make_tiny_dataset(root: Path, train: int = 8, valid: int = 4, test: int = 4, seed: int = 0) -> Path:
    from digitdet.data.synth import generate_dataset

    generate_dataset(root, {"train": train, "valid": valid, "test": test}, seed=seed, workers=1,
                     progress=False)
    return root


def train_tiny(root: Path) -> tuple[Path, Path]:
    """(dataset, best.pt): make_tiny_dataset under root/data and one epoch of the TINY config in root/run."""
    from digitdet.config import load_config
    from digitdet.training import fit as train

    data = make_tiny_dataset(root / "data")
    train.fit(load_config([CPU], [*TINY, "train.epochs=1"]), data, root / "run", progress=False)
    return data, root / "run" / "best.pt"


def yaml_settings(path: Path) -> dict:
    """{section: {key: value}} a YAML config file sets, its `_base_` chain resolved here with PyYAML
    (independently of digitdet.config, so tests can check what load_config built)."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    base = raw.pop("_base_", None)
    out = yaml_settings(Path(path).parent / base) if base else {}
    for section, values in raw.items():
        out.setdefault(section, {}).update(values)
    return out
