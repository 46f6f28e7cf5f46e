import pytest
import torch

from digitdet.config import load_config
from digitdet.errors import ConfigError
from digitdet.model import KeepSizeTransform, build_model


def one_step(model):
    model.train()
    images = [torch.rand(3, 48, 96), torch.rand(3, 40, 80)]
    targets = [
        {"boxes": torch.tensor([[10.0, 8.0, 22.0, 40.0], [24.0, 8.0, 36.0, 40.0]]),
         "labels": torch.tensor([2, 8])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},  # no digits is valid
    ]
    losses = model(images, targets)
    loss = sum(losses.values())
    loss.backward()
    return loss


@pytest.mark.parametrize(
    "overrides, per_location",
    [
        (["model.backbone=resnet18"], 9),
        (["model.backbone=resnet18", "model.anchor_preset=plus4"], 9),
        (["model.backbone=resnet34", "model.norm=groupnorm"], 9),
        (["model.backbone=resnet50", "model.aspect_ratios=[1.0,2.0]"], 6),
        ([], 9),  # the seed: resnet101
    ],
)
def test_build_and_train_one_step(overrides, per_location):
    cfg = load_config([], ["model.rpn_post_nms_top_n_train=64", "model.box_batch_size_per_image=16",
                           *overrides])
    model = build_model(cfg)
    gen = model.rpn.anchor_generator
    assert gen.num_anchors_per_location() == [per_location] * 5
    # Anchors per level on a 64x128 input: locations x anchors per location (strides 4, 8, 16, 32, 64).
    images = torch.zeros(1, 3, 64, 128)
    feats = model.backbone(images)
    assert list(feats) == ["0", "1", "2", "3", "pool"]
    from torchvision.models.detection.image_list import ImageList

    anchors = gen(ImageList(images, [(64, 128)]), list(feats.values()))[0]
    expected = sum(f.shape[-2] * f.shape[-1] * per_location for f in feats.values())
    assert anchors.shape == (expected, 4)
    assert torch.isfinite(one_step(model))
    norms = {type(m).__name__ for m in model.backbone.modules()}
    assert "FrozenBatchNorm2d" not in norms


def test_cpu_config_levels_and_no_resize_by_default():
    cfg = load_config([], ["model.backbone=resnet18"])
    model = build_model(cfg)
    assert isinstance(model.transform, KeepSizeTransform)
    model.eval()
    with torch.no_grad():
        images, _ = model.transform([torch.rand(3, 23, 52)])
    assert images.image_sizes == [(23, 52)]  # not blown up to 800 px
    cpu = load_config([], ["model.backbone=resnet18", "model.returned_layers=[2,3,4]",
                           "model.anchor_preset=custom", "model.anchor_sizes=[[32],[64],[128],[256]]",
                           "model.min_size=128", "model.max_size=512"])
    model = build_model(cpu).eval()
    assert model.rpn.anchor_generator.num_anchors_per_location() == [3] * 4
    with torch.no_grad():
        images, _ = model.transform([torch.rand(3, 23, 52)])
        assert images.image_sizes == [(128, 289)]
        out = model([torch.rand(3, 23, 52)])[0]
    assert out["boxes"].shape[1] == 4  # boxes come back in the 52x23 input's coordinates
    assert (out["boxes"][:, 2] <= 52 + 1e-3).all()


def test_normalizes_exactly_once():
    cfg = load_config([], ["model.backbone=resnet18"])
    model = build_model(cfg)
    image = torch.full((3, 8, 8), 0.5)
    norm = model.transform.normalize(image)
    mean, std = torch.tensor(cfg.model.image_mean), torch.tensor(cfg.model.image_std)
    assert torch.allclose(norm[:, 0, 0], (0.5 - mean) / std)


def test_backbone_weights_mismatch_is_a_clear_error(tmp_path):
    import torchvision

    good = torchvision.models.resnet18().state_dict()
    torch.save(good, tmp_path / "r18.pt")
    build_model(load_config([], ["model.backbone=resnet18", f"model.backbone_weights={tmp_path / 'r18.pt'}"]))
    with pytest.raises(ConfigError, match="does not match"):
        build_model(load_config([], ["model.backbone=resnet34",
                                     f"model.backbone_weights={tmp_path / 'r18.pt'}"]))
    with pytest.raises(ConfigError, match="not found"):
        build_model(load_config([], ["model.backbone=resnet18", "model.backbone_weights=/nope.pt"]))
