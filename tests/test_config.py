from pathlib import Path

import pytest

from digitdet.config import ANCHOR_PRESETS, Config, load_config, parse_override
from digitdet.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_seed_config_holds_the_report_settings():
    cfg = load_config([CONFIGS / "seed.yaml"])
    assert cfg.model.backbone == "resnet101"
    assert cfg.model.returned_layers == (1, 2, 3, 4)
    assert cfg.anchor_sizes() == ((4, 8, 16), (8, 16, 32), (16, 32, 64), (32, 64, 128), (64, 128, 256))
    assert cfg.model.aspect_ratios == (0.5, 1.0, 2.0)
    assert (cfg.model.roi_output_size, cfg.model.roi_sampling_ratio) == (7, 2)
    assert (cfg.data.upsample, cfg.data.sharpen) == (2.0, 1.5)
    t = cfg.train
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size) == ("adamw", 5e-5, 1e-3, 4)
    assert (t.scheduler, t.plateau_factor, t.plateau_patience) == ("plateau", 0.5, 2)
    assert (t.early_stop_patience, t.epochs) == (7, 50)
    assert (cfg.predict.nms_thresh, cfg.predict.score_thresh) == (0.5, 0.65)
    assert cfg.model.min_size is None  # no silent 800-px resize


def test_every_shipped_config_loads():
    files = sorted(CONFIGS.rglob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        if path.parent.name == "ablations":
            load_config([CONFIGS / "cpu.yaml", path])
        else:
            load_config([path])


def test_base_chain_and_overrides(tmp_path):
    (tmp_path / "a.yaml").write_text("train:\n  lr: 0.01\n  epochs: 3\n")
    (tmp_path / "b.yaml").write_text("_base_: a.yaml\ntrain:\n  epochs: 5\n")
    cfg = load_config([tmp_path / "b.yaml"], ["train.batch_size=2", "model.min_size=128"])
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.batch_size) == (0.01, 5, 2)
    assert cfg.model.min_size == (128,)


def test_yaml_exponent_strings_become_floats(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  lr: 5e-5\n")
    assert load_config([tmp_path / "c.yaml"]).train.lr == pytest.approx(5e-5)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.lrr=1", "train.lrr"),
        ("trian.lr=1", "trian"),
        ("train.epochs=abc", "train.epochs"),
        ("train.amp=3", "train.amp"),
        ("model.backbone=vgg", "model.backbone"),
        ("model.anchor_preset=nope", "nope"),
        ("predict.nms_thresh=1.5", "predict.nms_thresh"),
        ("lr=1", "section.key"),
        ("train.lr", "section.key=value"),
        ("model.returned_layers=[2,3]", "size groups"),
    ],
)
def test_bad_overrides_name_the_key(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace(".", r"\.")):
        load_config([CONFIGS / "seed.yaml"], [override])


def test_unknown_key_in_file_is_an_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("model:\n  backbon: resnet18\n")
    with pytest.raises(ConfigError, match="model.backbon"):
        load_config([tmp_path / "bad.yaml"])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config([tmp_path / "none.yaml"])
    (tmp_path / "broken.yaml").write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config([tmp_path / "broken.yaml"])


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config([CONFIGS / "cpu.yaml"])
    (tmp_path / "merged.yaml").write_text(cfg.to_yaml())
    assert load_config([tmp_path / "merged.yaml"]) == cfg
    assert Config() == load_config([])


def test_parse_override_values():
    assert parse_override("model.anchor_sizes=[[32],[64]]") == (["model", "anchor_sizes"], [[32], [64]])
    assert parse_override("train.limit=null") == (["train", "limit"], None)
    assert set(ANCHOR_PRESETS) == {"x2", "plus4"}
