from pathlib import Path

import pytest
import torch

from digitdet.config import ANCHOR_PRESETS, Config, load_config, parse_override, shipped_configs
from digitdet.errors import ConfigError
from tiny import yaml_settings

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


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def test_every_shipped_config_loads():
    files = sorted(CONFIGS.rglob("*.yaml"))
    assert len(files) >= 2 and any(p.parent.name == "ablations" for p in files)
    for path in files:
        delta = path.parent.name in ("ablations", "recipe")  # deltas laid over the CPU base
        stack = [CONFIGS / "cpu.yaml", path] if delta else [path]
        cfg = load_config(stack)
        expected: dict = {}
        for f in stack:
            for section, values in yaml_settings(f).items():
                expected.setdefault(section, {}).update(values)
        if path.name == "cpu.yaml":  # the base chain was followed: seed.yaml's own settings are there too
            assert expected["train"]["optimizer"] == "adamw" and expected["train"]["plateau_factor"] == 0.5
        checked = 0
        for section, values in expected.items():
            for key, value in values.items():
                actual = getattr(getattr(cfg, section), key)
                if isinstance(actual, float) and isinstance(value, str):
                    value = float(value)  # PyYAML reads e.g. 5e-5 (no dot) as a string
                assert _plain(actual) == _plain(value), f"{path.name}: {section}.{key}"
                checked += 1
        assert checked >= 3, path.name


def test_cpu_config_builds_the_model_it_describes():
    """build_model(cpu.yaml) has the backbone, FPN, anchors and sampler sizes the file asks for."""
    import torchvision

    from digitdet.model import build_model

    m = yaml_settings(CONFIGS / "cpu.yaml")["model"]
    p = yaml_settings(CONFIGS / "cpu.yaml")["predict"]
    model = build_model(load_config([CONFIGS / "cpu.yaml"]))
    # Backbone: torchvision's resnet18 trunk up to the deepest returned stage (every tensor name and
    # shape but BatchNorm's step counters), frozen whole as the file asks: frozen batch norm, no gradient.
    assert m["backbone"] == "resnet18" and m["frozen_stages"] == 1 + max(m["returned_layers"])
    kept = ("conv1.", "bn1.", *(f"layer{i}." for i in range(1, max(m["returned_layers"]) + 1)))
    ref = {k: v.shape for k, v in getattr(torchvision.models, m["backbone"])().state_dict().items()
           if k.startswith(kept) and not k.endswith("num_batches_tracked")}
    body = model.backbone.body
    assert {k: v.shape for k, v in body.state_dict().items()} == ref
    assert {type(x).__name__ for x in body.modules() if "Norm" in type(x).__name__} == {"FrozenBatchNorm2d"}
    assert not any(p.requires_grad for p in body.parameters())
    assert all(p.requires_grad for p in model.backbone.fpn.parameters())
    # FPN over the returned stages (resnet18 widths 64 * 2 ** (i - 1)) with fpn_channels outputs, + a pool level.
    assert body.return_layers == {f"layer{i}": str(k) for k, i in enumerate(m["returned_layers"])}
    fpn = model.backbone.fpn
    assert [b[0].in_channels for b in fpn.inner_blocks] == [64 * 2 ** (i - 1) for i in m["returned_layers"]]
    assert model.backbone.out_channels == m["fpn_channels"] == 128
    assert {b[0].out_channels for b in [*fpn.inner_blocks, *fpn.layer_blocks]} == {m["fpn_channels"]}
    assert model.rpn.head.conv[0][0].in_channels == m["fpn_channels"]
    # Anchors: the custom sizes per level, the same aspect ratios on each.
    gen = model.rpn.anchor_generator
    assert gen.sizes == tuple(tuple(s) for s in m["anchor_sizes"]) and len(gen.sizes) == len(m["returned_layers"]) + 1
    assert gen.aspect_ratios == (tuple(m["aspect_ratios"]),) * len(m["anchor_sizes"])
    assert gen.num_anchors_per_location() == [len(m["anchor_sizes"][0]) * len(m["aspect_ratios"])] * len(
        m["anchor_sizes"])
    # RPN and RoI sampling / proposal counts, detection thresholds, the resize's short sides.
    assert model.rpn._pre_nms_top_n["testing"] == m["rpn_pre_nms_top_n_test"] == 300
    assert model.rpn._post_nms_top_n == {"training": m["rpn_post_nms_top_n_train"],
                                         "testing": m["rpn_post_nms_top_n_test"]}
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == m["box_batch_size_per_image"]
    assert model.roi_heads.box_roi_pool.featmap_names == [str(k) for k in range(len(m["returned_layers"]))]
    assert model.roi_heads.box_roi_pool.sampling_ratio == m["roi_sampling_ratio"]
    assert model.roi_heads.box_head.fc6.out_features == m["representation_size"]
    # The trunk holds the bundled pretrained weights the file names, not a random initialisation.
    from digitdet.model import resolve_weights

    shipped = torch.load(resolve_weights(m["backbone_weights"]), weights_only=True)["model"]  # a packed reader
    shipped = {k.removeprefix("backbone.body."): v for k, v in shipped.items() if k.startswith("backbone.body.")}
    shipped = {k: v for k, v in shipped.items() if not k.endswith("num_batches_tracked")}
    assert shipped and all(torch.equal(body.state_dict()[k], v.float()) for k, v in shipped.items())
    assert (model.roi_heads.nms_thresh, model.roi_heads.score_thresh) == (p["nms_thresh"], p["score_thresh"])
    assert tuple(model.transform.min_size) == tuple(m["min_size"])


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


def test_anchor_sizes_without_the_custom_preset_is_an_error():
    with pytest.raises(ConfigError, match="anchor_preset=custom"):
        load_config([], ["model.anchor_sizes=[[8],[16],[32],[64],[128]]"])  # preset x2 would ignore them
    cfg = load_config([], ["model.anchor_preset=custom", "model.anchor_sizes=[[8],[16],[32],[64],[128]]"])
    assert cfg.anchor_sizes() == ((8,), (16,), (32,), (64,), (128,))
    # Going back to a preset from cpu.yaml means dropping its sizes too; the message says how.
    with pytest.raises(ConfigError, match="anchor_sizes=null"):
        load_config([CONFIGS / "cpu.yaml"], ["model.anchor_preset=x2"])
    assert load_config([CONFIGS / "cpu.yaml"], ["model.anchor_preset=x2", "model.anchor_sizes=null",
                                                "model.returned_layers=[1,2,3,4]"]).anchor_sizes()[0] == (4, 8, 16)


def test_invalid_yaml_is_an_error_naming_the_place(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.lr=\[1,.*not valid YAML.*line 1, column"):
        load_config([], ["train.lr=[1,"])
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_override("model.backbone_weights=a: b: c")
    assert parse_override("model.backbone_weights='a: b: c'")[1] == "a: b: c"
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: 0.1\n  epochs: [1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML .* at line \d+, column \d+"):
        load_config([bad])


# --- configs by name: shipped as package data, found from any directory --------------------------------


def test_shipped_configs_load_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./configs here
    assert {"cpu", "seed", "ablations/scale2", "recipe/roi7"} <= set(shipped_configs())
    by_path = load_config([CONFIGS / "cpu.yaml"])
    for name in ("cpu", "cpu.yaml", "configs/cpu.yaml", "./cpu.yml"):
        assert load_config([name]) == by_path, name
    assert load_config(["seed"]) == load_config([CONFIGS / "seed.yaml"])
    assert load_config(["cpu", "ablations/scale2"]).data.upsample == 2.0
    assert load_config(["ablations/scale2.yaml"]) == load_config([CONFIGS / "ablations" / "scale2.yaml"])


def test_a_file_that_exists_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cpu.yaml").write_text("train:\n  epochs: 3\n")
    assert load_config(["cpu.yaml"]).train.epochs == 3  # ./cpu.yaml, not the package's
    assert load_config(["cpu"]) == load_config([CONFIGS / "cpu.yaml"])  # no ./cpu file: the name


def test_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"cpuu: config file not found.*shipped: .*ablations/scale2.*cpu.*seed"):
        load_config(["cpuu"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(["../configs/cpu"])  # a name is looked up in the list, never joined onto the package path
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(ConfigError, match="not a config file"):
        load_config(["folder.yaml"])


def test_users_file_can_base_on_a_shipped_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "sub" / "my.yaml"
    mine.parent.mkdir()
    mine.write_text("_base_: cpu.yaml\ntrain:\n  epochs: 2\n")
    cfg = load_config([mine])
    assert cfg.train.epochs == 2
    assert cfg.model == load_config(["cpu"]).model  # cpu.yaml and its own _base_ (seed.yaml) were followed
    (tmp_path / "sub" / "cpu.yaml").write_text("train:\n  lr: 0.5\n")  # a file beside it wins
    assert load_config([mine]).train.lr == 0.5
    mine.write_text("_base_: nope.yaml\n")
    with pytest.raises(ConfigError, match=r"my\.yaml: _base_: .*nope\.yaml: config file not found.*shipped"):
        load_config([mine])
    mine.write_text("_base_: [1, 2]\n")
    with pytest.raises(ConfigError, match="_base_ must be"):
        load_config([mine])


def test_every_shipped_yaml_is_package_data():
    """Each YAML under the package is found through importlib.resources and matched by a package-data
    glob in pyproject.toml, so a non-editable `pip install .` carries it."""
    import fnmatch
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    from importlib import resources

    def walk(node, prefix=""):
        for child in node.iterdir():
            if child.is_dir():
                yield from walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".yaml"):
                yield f"{prefix}{child.name}"

    found = sorted(walk(resources.files("digitdet") / "configs"))
    assert found == sorted(f"{n}.yaml" for n in shipped_configs())
    assert len(found) == len(list(CONFIGS.rglob("*.yaml"))) >= 14
    pyproject = tomllib.loads((CONFIGS.parent / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["digitdet"]
    for name in found:
        assert any(fnmatch.fnmatchcase(f"configs/{name}", g) and g.count("/") == name.count("/") + 1
                   for g in globs), name


def test_unreadable_config_is_a_config_error(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"train:\n  lr: 0.1 # \xe9\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config([bad])


def test_load_pixels_is_the_model_budget_before_upsampling_and_the_pyramids_largest_level():
    cfg = load_config([], [])
    assert cfg.predict.scan == "cascade" and cfg.load_pixels() == 4_000_000  # no view is run larger
    assert load_config([], ["predict.scan=pyramid"]).load_pixels() == 4_000_000
    assert load_config([], ["predict.scan=single"]).load_pixels() == 16_000_000
    assert load_config([], ["predict.scan=single", "data.upsample=2"]).load_pixels() == 4_000_000
    assert load_config([], ["data.upsample=2"]).load_pixels() == 1_000_000
    assert load_config([], ["predict.max_pixels=40000", "data.upsample=2"]).load_pixels() == 10_000
