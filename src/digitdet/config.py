"""One typed configuration: frozen dataclasses loaded from YAML files plus `section.key=value` overrides.

A config is a YAML file's path or the name of a config shipped inside the package (`cpu`, `seed`,
`ablations/scale2`; `cpu.yaml` and `configs/cpu.yaml` name it too): a file that exists wins over a name.
A YAML file may name a parent with `_base_: other.yaml`, resolved the same way relative to itself (so a
user's own file can say `_base_: cpu.yaml`); files given later and command-line overrides are merged on
top, key by key. Unknown keys and values of the wrong type are errors that name the key.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from digitdet.errors import ConfigError, first_line

# The shipped configs: package data (pyproject [tool.setuptools.package-data]), found from any directory.
SHIPPED_DIR = Path(__file__).resolve().parent / "configs"

# Anchor presets from the report (sizes per FPN level; 5 levels = C2..C5 outputs + max-pool).
ANCHOR_PRESETS: dict[str, tuple[tuple[int, ...], ...]] = {
    "x2": ((4, 8, 16), (8, 16, 32), (16, 32, 64), (32, 64, 128), (64, 128, 256)),
    "plus4": ((4, 12, 20), (28, 36, 44), (52, 60, 68), (68, 72, 80), (100, 128, 256)),
}


@dataclass(frozen=True)
class DataConfig:
    upsample: float = 1.0  # bicubic factor k applied to every image (boxes scaled with it)
    contrast: float = 1.0  # PIL ImageEnhance.Contrast factor; 1.0 = unchanged
    sharpen: float = 1.0  # PIL ImageEnhance.Sharpness factor; 1.0 = unchanged
    augment: bool = True  # photometric + small geometric jitter for training (never a flip)
    aug_scale: float = 0.1  # +- relative scale jitter
    aug_rotate: float = 5.0  # +- degrees
    aug_perspective: float = 0.1  # distortion scale for RandomPerspective
    workers: int = 2  # DataLoader worker processes


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "resnet101"  # resnet18 / resnet34 / resnet50 / resnet101
    norm: str = "batchnorm"  # trainable "batchnorm" or "groupnorm"; never frozen BN from scratch
    returned_layers: tuple[int, ...] = (1, 2, 3, 4)  # ResNet stages feeding the FPN (1..4 = C2..C5)
    fpn_channels: int = 256
    anchor_preset: str = "x2"  # "x2", "plus4", or "custom" (then anchor_sizes is used)
    anchor_sizes: tuple[tuple[int, ...], ...] | None = None  # only with anchor_preset "custom" (else an error)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # torchvision convention: height / width
    roi_output_size: int = 7
    roi_sampling_ratio: int = 2
    representation_size: int = 1024  # width of the two-layer box head (TwoMLPHead)
    # Internal resize of GeneralizedRCNNTransform: None keeps each image's size (after `upsample`).
    min_size: tuple[int, ...] | None = None  # several values = one drawn per image in training
    max_size: int = 1333  # longer side cap, also when min_size is None (larger images are scaled down)
    image_mean: tuple[float, ...] = (0.485, 0.456, 0.406)  # the one and only normalization
    image_std: tuple[float, ...] = (0.229, 0.224, 0.225)
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    rpn_batch_size_per_image: int = 256
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25  # share of digits among the sampled RoIs (torchvision's default)
    box_detections_per_img: int = 100
    # A 12th class for glyphs that look like digits but must not be read (a letter, a digit cut by the
    # image edge), trained from the dataset's "lookalikes" boxes (the synthetic data has them) and folded
    # into the background at inference (model.LookalikePredictor).
    lookalike_class: bool = False
    backbone_weights: str | None = None  # optional local state dict for the ResNet trunk
    # Pretrained trunks: keep the first stages as loaded (1 = the stem, 2 = stem + layer1, ...): no
    # gradients and BatchNorm frozen at its loaded statistics (torchvision's trainable_layers). 0 trains all.
    frozen_stages: int = 0


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50
    batch_size: int = 4
    optimizer: str = "adamw"  # "adamw" or "sgd"
    lr: float = 5e-5
    weight_decay: float = 1e-3
    warmup_iters: int = 0
    scheduler: str = "plateau"  # "plateau" (x factor on val mAP) or "cosine" (down to 1 % of lr)
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    early_stop_patience: int = 7  # epochs without val mAP gain; 0 disables
    clip_grad_norm: float = 0.0  # 0 disables
    amp: bool = True  # only takes effect on CUDA
    seed: int = 0
    limit: int | None = None  # use only the first N training images (smoke tests)
    val_limit: int | None = None
    # Training budget (also ends an epoch midway). max_images: images seen in all, the same steps on any
    # host. max_minutes (used only without max_images): the first steps are timed and the minutes turned
    # into a step count once (recorded in metrics.jsonl); the schedule never follows the clock.
    max_images: int | None = None
    max_minutes: float | None = None
    threads: int | None = None  # torch CPU threads; None = number of cores
    # Fine-tuning: a checkpoint (RUN/best.pt) or "bundled:reader" whose whole-model weights start this run
    # (same model config); the optimizer and the schedule start fresh. Not used on --resume.
    init_weights: str | None = None


PYRAMID_MAX_LEVEL_PIXELS = 4_000_000  # reading.pyramid's largest level (a whole photo's memory, time), model px


@dataclass(frozen=True)
class PredictConfig:
    nms_thresh: float = 0.5  # per-class box NMS inside the detector
    score_thresh: float = 0.05  # detections kept for pred.json / COCO mAP
    read_thresh: float = 0.65  # detections used to read the number (tuned on validation after training)
    dedup_iou: float = 0.5  # class-agnostic duplicate suppression before reading ("117 -> 1117")
    # Whole-photo detection (reading.scan): "cascade" finds number regions in one pass and reads each at the
    scan: str = "cascade"  # model's scale (reading/cascade.py); "pyramid": scales x tiles; "single": its own
    # The bundled reader's close-up reader (reading/routing.py) reads a photo whose number is >= close_frac of
    close_frac: float | None = 0.35  # its height (null: the first reader alone, as a checkpoint), at each
    close_vote: bool = True  # of its training scales with close_vote, the readings voting; the line recogniser
    line_margin: float | None = 3.0  # disputes that when e^line_margin x likelier (reading/dispute.py; null: never)
    line_context: float | None = 1.0  # the line reads the number with this many digit heights each side (null: all)
    line_veto: float | None = 0.9  # drops a number the line's head or vetoer says holds none >= this (null: never)
    batch_size: int = 8
    # Larger images are downscaled on load (aspect kept) to at most this many pixels after data.upsample, boxes
    # mapped back. Bounds memory: a 108 MP photo is read at 16 MP (the pyramid at 4 MP: Config.load_pixels).
    max_pixels: int = 16_000_000


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def load_pixels(self) -> int:
        """The most pixels an image is loaded at: predict.max_pixels holds for the tensor the model gets,
        i.e. after data.upsample, so a photo is loaded at max_pixels / upsample**2 (predict, read, serve).
        Scanning a whole photo, at most PYRAMID_MAX_LEVEL_PIXELS: no view is run larger, so loading more only
        costs memory (a 16 MP upload held 0.7 GB more in the service) and the same views come out."""
        budget = self.predict.max_pixels
        if self.predict.scan != "single":
            budget = min(budget, PYRAMID_MAX_LEVEL_PIXELS)
        return max(1, int(budget / self.data.upsample**2))

    def anchor_sizes(self) -> tuple[tuple[int, ...], ...]:
        m = self.model
        if m.anchor_preset == "custom":
            if not m.anchor_sizes:
                raise ConfigError("model.anchor_preset is 'custom' but model.anchor_sizes is empty")
            return m.anchor_sizes
        if m.anchor_preset not in ANCHOR_PRESETS:
            raise ConfigError(
                f"model.anchor_preset: unknown preset {m.anchor_preset!r} "
                f"(choose from {sorted(ANCHOR_PRESETS)} or 'custom')"
            )
        return ANCHOR_PRESETS[m.anchor_preset]


def _plain(obj: Any) -> Any:
    """Tuples -> lists so YAML stays readable and round-trips."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def shipped_configs() -> list[str]:
    """Names of the configs shipped with digitdet: 'cpu', 'seed', 'ablations/scale2', ... (sorted)."""
    return sorted(p.relative_to(SHIPPED_DIR).with_suffix("").as_posix() for p in SHIPPED_DIR.rglob("*.yaml"))


def resolve_config(spec: str | Path, folder: Path | None = None) -> Path:
    """The YAML file `spec` names: a path (relative to `folder` when given, e.g. a `_base_`'s file's folder,
    else to the working directory) when that file exists, else a shipped config's name ('cpu', 'cpu.yaml',
    'configs/cpu.yaml', 'ablations/scale2'). Neither -> ConfigError listing the shipped names."""
    path = Path(spec)
    candidate = folder / path if folder is not None else path
    if candidate.is_file():
        return candidate
    name = path.as_posix()
    name = name[2:] if name.startswith("./") else name
    name = name[len("configs/"):] if name.startswith("configs/") else name
    for suffix in (".yaml", ".yml"):
        name = name.removesuffix(suffix)
    available = shipped_configs()
    if name in available:  # a lookup in the list, never a path built from user text
        return SHIPPED_DIR / f"{name}.yaml"
    if candidate.exists():
        raise ConfigError(f"{candidate}: not a config file")
    raise ConfigError(f"{candidate}: config file not found, and no shipped config has that name "
                      f"(shipped: {', '.join(available)})")


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read one YAML file (already resolved by resolve_config), resolving its `_base_` chain first."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular _base_ reference")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({first_line(exc)})") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({_yaml_problem(exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    base = raw.pop("_base_", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: _base_ must be a file name or a shipped config's name, got {base!r}")
    try:
        base_path = resolve_config(base, folder=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: _base_: {exc}") from None
    merged = _read_yaml(base_path, (*seen, path))
    _deep_merge(merged, raw, str(path))
    return merged


def _deep_merge(dst: dict[str, Any], src: dict[str, Any], where: str) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _deep_merge(dst[key], value, where)
        else:
            dst[key] = value


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.lr=1e-3` -> (['train', 'lr'], 0.001). Values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    key, _, raw = text.partition("=")
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"override {text!r}: key must look like section.key (e.g. train.lr)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({_yaml_problem(exc)}); "
                          "quote it to pass a string") from None
    return parts, value


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """'problem at line L, column C' from PyYAML's multi-line message."""
    problem = getattr(exc, "problem", None) or first_line(exc)
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def load_config(
    paths: Iterable[str | Path] = (), overrides: Sequence[str] = (), base: dict[str, Any] | None = None
) -> Config:
    """Merge `base` (e.g. a checkpoint's config), YAML files or shipped config names (in order; see
    resolve_config) and overrides onto the defaults; validate every key and type."""
    merged: dict[str, Any] = copy.deepcopy(base) if base else {}
    for path in paths:
        _deep_merge(merged, _read_yaml(resolve_config(path)), str(path))
    for text in overrides:
        (section, key), value = parse_override(text)
        merged.setdefault(section, {})
        if not isinstance(merged[section], dict):
            raise ConfigError(f"override {text!r}: {section} is not a section")
        merged[section][key] = value
    return from_dict(merged)


def from_dict(data: dict[str, Any]) -> Config:
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    hints = typing.get_type_hints(Config)
    kwargs: dict[str, Any] = {}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"unknown config section {name!r} (known: {', '.join(sections)})")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"config section {name!r} must be a mapping")
        if name == "predict" and "pyramid" in values:  # before predict.scan (checkpoints up to 2026-12)
            values = {k: v for k, v in values.items() if k != "pyramid"}
            values.setdefault("scan", "cascade" if data["predict"]["pyramid"] else "single")
        kwargs[name] = _build_section(hints[name], values, name)
    cfg = Config(**kwargs)
    cfg.anchor_sizes()  # validates the preset name early
    _check_values(cfg)
    return cfg


def _build_section(cls: type, values: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in values.items():
        if key not in hints:
            known = ", ".join(hints)
            raise ConfigError(f"unknown config key '{section}.{key}' (known in {section}: {known})")
        out[key] = _coerce(value, hints[key], f"{section}.{key}")
    return cls(**out)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is tuple:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]  # a single number where a list is expected: min_size=128
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads '5e-5' as a string
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _check_values(cfg: Config) -> None:
    if cfg.model.anchor_sizes is not None and cfg.model.anchor_preset != "custom":
        raise ConfigError(
            f"model.anchor_sizes is set but model.anchor_preset is {cfg.model.anchor_preset!r}, which ignores "
            "it: set model.anchor_preset=custom to use these sizes, or model.anchor_sizes=null for the preset"
        )
    choices = {
        "model.backbone": (cfg.model.backbone, ("resnet18", "resnet34", "resnet50", "resnet101")),
        "model.norm": (cfg.model.norm, ("batchnorm", "groupnorm")),
        "train.optimizer": (cfg.train.optimizer, ("adamw", "sgd")),
        "train.scheduler": (cfg.train.scheduler, ("plateau", "cosine")),
        "predict.scan": (cfg.predict.scan, ("cascade", "pyramid", "single")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    if not cfg.model.returned_layers or any(i not in (1, 2, 3, 4) for i in cfg.model.returned_layers):
        raise ConfigError(f"model.returned_layers: {cfg.model.returned_layers} must be a subset of 1..4")
    stages = 1 + max(cfg.model.returned_layers)  # the stem and the trunk's layers
    if not 0 <= cfg.model.frozen_stages <= stages:
        raise ConfigError(f"model.frozen_stages: {cfg.model.frozen_stages} must be 0..{stages} "
                          "(0 trains all, 1 freezes the stem, 2 the stem and layer1, ...)")
    n_levels = len(cfg.model.returned_layers) + 1  # + the max-pool level
    if len(cfg.anchor_sizes()) != n_levels:
        raise ConfigError(
            f"anchors: {len(cfg.anchor_sizes())} size groups for {n_levels} feature levels "
            f"(returned_layers {list(cfg.model.returned_layers)} + pool)"
        )
    positive = {"train.lr": cfg.train.lr, "train.batch_size": cfg.train.batch_size, "data.upsample": cfg.data.upsample,
                "predict.batch_size": cfg.predict.batch_size, "predict.max_pixels": cfg.predict.max_pixels}
    for key, value in (("train.max_images", cfg.train.max_images), ("train.max_minutes", cfg.train.max_minutes)):
        if value is not None:
            positive[key] = value
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be > 0, got {value}")
    for key in ("nms_thresh", "score_thresh", "read_thresh", "dedup_iou", "close_frac"):
        value = getattr(cfg.predict, key)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"predict.{key}: must be within [0, 1], got {value}")
