"""training/pretrain.py and data/synth/glyph_crops.py: crops, a tiny pretraining run, resume, loading into
build_model."""

import numpy as np
import pytest
import torch

from digitdet.cli import main
from digitdet.config import load_config
from digitdet.data.synth.glyph_crops import NO_DIGIT, make_crops
from digitdet.errors import ConfigError, DigitdetError
from digitdet.model import build_model
from digitdet.training import pretrain as pretrain_mod
from digitdet.training.pretrain import TRUNK_FORMAT, PretrainSettings, pretrain

TINY = PretrainSettings(images=12, holdout=4, epochs=2, batch_size=8, layers=2, seed=1)
# A detector whose trunk stops at layer2, like the tiny pretrained one.
MODEL_L2 = ["model.backbone=resnet18", "model.returned_layers=[1,2]", "model.anchor_preset=custom",
            "model.anchor_sizes=[[16],[32],[64]]", "model.fpn_channels=32", "model.representation_size=32"]


def test_crops_are_labelled_sized_and_the_same_with_any_workers():
    x1, y1 = make_crops(0, 1, 40, workers=1)
    x2, y2 = make_crops(0, 1, 40, workers=2)  # >= 32 images: the worker pool
    assert x1.shape[1:] == (48, 48, 3) and x1.dtype == np.uint8 and len(x1) == len(y1) > 40
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert set(np.unique(y1)) <= set(range(11)) and NO_DIGIT in y1 and (y1 < NO_DIGIT).sum() > 40
    x3, _ = make_crops(0, 41, 5, workers=1, short_side=64, size=32)
    assert x3.shape[1:] == (32, 32, 3) and not np.array_equal(x3[0], x1[0])


@pytest.fixture(scope="module")
def trunk(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "trunk.pt"
    summary = pretrain(out, TINY, progress=False)
    return out, summary


def test_pretrain_writes_a_float16_trunk_that_loads_safely(trunk):
    out, summary = trunk
    saved = torch.load(out, map_location="cpu", weights_only=True)
    assert saved["format"] == TRUNK_FORMAT and (saved["backbone"], saved["layers"]) == ("resnet18", 2)
    keys = set(saved["state_dict"])
    assert {k.split(".")[0] for k in keys} == {"conv1", "bn1", "layer1", "layer2"}
    assert all(v.dtype == torch.float16 for v in saved["state_dict"].values() if v.is_floating_point())
    assert 0.0 <= summary["heldout_acc"] <= 1.0 and summary["crops"] > 12 and len(summary["history"]) == 2
    assert saved["meta"]["settings"]["seed"] == 1 and not out.with_name("trunk.pt.ckpt").exists()


def test_its_output_loads_through_backbone_weights(trunk):
    out, _ = trunk
    saved = torch.load(out, map_location="cpu", weights_only=True)["state_dict"]
    model = build_model(load_config([], [*MODEL_L2, f"model.backbone_weights={out}"]))
    body = model.backbone.body.state_dict()
    assert "layer3.0.conv1.weight" not in body  # stages past the deepest returned one are not built
    for key, value in saved.items():
        assert torch.equal(body[key], value.float()), key
    torch.manual_seed(0)
    scratch = build_model(load_config([], MODEL_L2)).backbone.body.state_dict()
    assert not torch.equal(scratch["layer2.0.conv1.weight"], body["layer2.0.conv1.weight"])


def test_a_wrong_trunk_file_is_a_clear_error(trunk, tmp_path):
    out, _ = trunk
    deeper = ["model.backbone=resnet18", "model.returned_layers=[2,3]", "model.anchor_preset=custom",
              "model.anchor_sizes=[[16],[32],[64]]", f"model.backbone_weights={out}"]
    with pytest.raises(ConfigError, match=r"does not match the trunk: \d+ missing \(e\.g\. layer3"):
        build_model(load_config([], deeper))
    (tmp_path / "notes.pt").write_text("not weights")
    with pytest.raises(ConfigError, match="not a torch state dict"):
        build_model(load_config([], [*MODEL_L2, f"model.backbone_weights={tmp_path / 'notes.pt'}"]))
    with pytest.raises(ConfigError, match="no bundled trunk 'nope'"):
        build_model(load_config([], [*MODEL_L2, "model.backbone_weights=bundled:nope"]))


def test_resume_gives_the_uninterrupted_trunk(trunk, tmp_path, monkeypatch):
    out, _ = trunk
    calls = {"n": 0}
    real = pretrain_mod.accuracy

    def die_after_the_first_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pretrain_mod, "accuracy", die_after_the_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        pretrain(tmp_path / "t.pt", TINY, progress=False)
    monkeypatch.undo()
    assert (tmp_path / "t.pt.ckpt").is_file() and not (tmp_path / "t.pt").exists()
    pretrain(tmp_path / "t.pt", TINY, resume=True, progress=False)
    a = torch.load(out, weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "t.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(DigitdetError, match="nothing to resume"):
        pretrain(tmp_path / "u.pt", TINY, resume=True, progress=False)


def test_pretraining_learns_and_moves_the_batchnorm_statistics(tmp_path):
    """The loop trains in train mode: every BatchNorm of the trunk keeps running statistics of the crops
    (not the 0 / 1 it starts with) and the loss falls on the tiny data.
    Mutation: model.eval() instead of model.train() in pretrain's epoch loop."""
    s = PretrainSettings(images=12, holdout=4, epochs=4, batch_size=8, layers=2, seed=1, lr=2e-2)
    summary = pretrain(tmp_path / "t.pt", s, progress=False)
    state = torch.load(tmp_path / "t.pt", weights_only=True)["state_dict"]
    steps = summary["crops"] // s.batch_size * s.epochs
    norms = [k[:-len(".running_mean")] for k in state if k.endswith(".running_mean")]
    assert len(norms) == 1 + 2 * 2 * 2 + 1  # bn1, two blocks of two in layer1 and layer2, layer2's downsample
    for bn in norms:
        mean, var = state[f"{bn}.running_mean"].float(), state[f"{bn}.running_var"].float()
        assert int(state[f"{bn}.num_batches_tracked"]) == steps, bn
        assert mean.abs().max() > 1e-3 and (var - 1).abs().max() > 1e-2, bn
    losses = [h["loss"] for h in summary["history"]]
    assert losses[-1] < losses[0] - 0.1, losses


def test_pretrain_cli(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["pretrain", "--help"])
    assert info.value.code == 0 and "--images" in capsys.readouterr().out
    out = tmp_path / "cli.pt"
    assert main(["-q", "pretrain", "--out", str(out), "--images", "8", "--holdout", "2", "--epochs", "1",
                 "--layers", "1", "--batch-size", "8"]) == 0
    assert "held-out accuracy" in capsys.readouterr().out and out.is_file()
