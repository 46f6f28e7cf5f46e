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
    """Dataset pipeline -> model: pixels reach the backbone as (p / 255 - mean) / std, normalized once.

    A Normalize added to build_transforms breaks the [0, 1] check; one more normalize inside the model's
    transform (KeepSizeTransform or the resizing one) breaks the batched-tensor check."""
    from PIL import Image

    from digitdet.config import DataConfig
    from digitdet.data.transforms import build_transforms

    rgb = (200, 100, 30)
    pil = Image.new("RGB", (64, 32), rgb)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    pixels = torch.tensor(rgb, dtype=torch.float64) / 255
    image, _ = build_transforms(DataConfig(), train=False)(pil, empty)
    assert image.shape == (3, 32, 64)
    torch.testing.assert_close(image, pixels.float()[:, None, None].expand(3, 32, 64), rtol=0, atol=1e-6)

    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64)  # ImageNet statistics, written out here
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64)
    once = ((pixels - mean) / std).float()
    # No resize (KeepSizeTransform, the seed's min_size null) and torchvision's resize (32 -> 48 px).
    for overrides, size in (([], (32, 64)), (["model.min_size=48"], (48, 96))):
        cfg = load_config([], ["model.backbone=resnet18", *overrides])
        assert (cfg.model.image_mean, cfg.model.image_std) == (tuple(mean.tolist()), tuple(std.tolist()))
        model = build_model(cfg).eval()
        with torch.no_grad():
            batch, _ = model.transform([image])
        assert batch.image_sizes == [size]
        got = batch.tensors[0, :, : size[0], : size[1]]
        torch.testing.assert_close(got, once[:, None, None].expand_as(got), rtol=0, atol=1e-5)


def test_backbone_weights_mismatch_is_a_clear_error(tmp_path):
    import torchvision

    # A resnet18 state dict with values no initialisation produces: every float tensor drawn at random.
    torch.manual_seed(1234)
    good = torchvision.models.resnet18().state_dict()
    for key, value in good.items():
        if value.is_floating_point():
            value.copy_(torch.rand_like(value) + 0.5 if key.endswith("running_var") else torch.randn_like(value))
    torch.save(good, tmp_path / "r18.pt")
    loaded = build_model(load_config([], ["model.backbone=resnet18",
                                          f"model.backbone_weights={tmp_path / 'r18.pt'}"]))
    plain = build_model(load_config([], ["model.backbone=resnet18"]))
    body, plain_body = loaded.backbone.body.state_dict(), plain.backbone.body.state_dict()
    trunk_keys = [k for k in good if not k.startswith("fc.")]
    assert sorted(body) == sorted(trunk_keys)  # the FPN's body is the whole trunk up to layer4
    for key in trunk_keys:
        assert torch.equal(body[key], good[key]), key
        if good[key].is_floating_point():
            assert not torch.equal(plain_body[key], good[key]), key
    with pytest.raises(ConfigError, match="does not match"):
        build_model(load_config([], ["model.backbone=resnet34",
                                     f"model.backbone_weights={tmp_path / 'r18.pt'}"]))
    with pytest.raises(ConfigError, match="not found"):
        build_model(load_config([], ["model.backbone=resnet18", "model.backbone_weights=/nope.pt"]))


# Two values for every model key: the built detector must differ between them. A key added to
# ModelConfig without an entry here fails the test, so no key can silently do nothing again.
_CUSTOM = ["model.anchor_preset=custom"]
KEY_VALUES = {
    "backbone": (["model.backbone=resnet18"], ["model.backbone=resnet34"]),
    "norm": ([], ["model.norm=groupnorm"]),
    "returned_layers": ([], ["model.returned_layers=[2,3,4]", "model.anchor_preset=custom",
                             "model.anchor_sizes=[[8],[16],[32],[64]]"]),
    "fpn_channels": (["model.fpn_channels=64"], ["model.fpn_channels=128"]),
    "anchor_preset": (["model.anchor_preset=x2"], ["model.anchor_preset=plus4"]),
    "anchor_sizes": ([*_CUSTOM, "model.anchor_sizes=[[4],[8],[16],[32],[64]]"],
                     [*_CUSTOM, "model.anchor_sizes=[[6],[12],[24],[48],[96]]"]),
    "aspect_ratios": (["model.aspect_ratios=[1.0]"], ["model.aspect_ratios=[2.0]"]),
    "roi_output_size": (["model.roi_output_size=5"], ["model.roi_output_size=7"]),
    "roi_sampling_ratio": (["model.roi_sampling_ratio=1"], ["model.roi_sampling_ratio=2"]),
    "representation_size": (["model.representation_size=64"], ["model.representation_size=96"]),
    "min_size": (["model.min_size=null"], ["model.min_size=[64]"]),
    "max_size": (["model.max_size=100"], ["model.max_size=200"]),
    "image_mean": ([], ["model.image_mean=[0.5,0.5,0.5]"]),
    "image_std": ([], ["model.image_std=[0.5,0.5,0.5]"]),
    "rpn_pre_nms_top_n_train": ([], ["model.rpn_pre_nms_top_n_train=100"]),
    "rpn_post_nms_top_n_train": ([], ["model.rpn_post_nms_top_n_train=100"]),
    "rpn_pre_nms_top_n_test": ([], ["model.rpn_pre_nms_top_n_test=100"]),
    "rpn_post_nms_top_n_test": ([], ["model.rpn_post_nms_top_n_test=100"]),
    "rpn_batch_size_per_image": ([], ["model.rpn_batch_size_per_image=64"]),
    "box_batch_size_per_image": ([], ["model.box_batch_size_per_image=64"]),
    "box_positive_fraction": ([], ["model.box_positive_fraction=0.5"]),
    "box_detections_per_img": ([], ["model.box_detections_per_img=10"]),
    "backbone_weights": ([], ["model.backbone_weights={weights}"]),
    "lookalike_class": ([], ["model.lookalike_class=true"]),
    "frozen_stages": ([], ["model.frozen_stages=2"]),
}


def _fingerprint(model) -> dict:
    """What a model key can change: every parameter/buffer shape and value sum, the pre/post-processing
    settings torchvision keeps as attributes, and what the transform does to a large image."""
    rpn, heads, tr = model.rpn, model.roi_heads, model.transform
    model.eval()
    with torch.no_grad():
        images, _ = tr([torch.full((3, 60, 300), 0.5)])
    return {
        "weights": {k: (tuple(v.shape), round(float(v.double().sum()), 3)) for k, v in model.state_dict().items()},
        "anchors": (rpn.anchor_generator.sizes, rpn.anchor_generator.aspect_ratios),
        "rpn": (rpn._pre_nms_top_n, rpn._post_nms_top_n, rpn.fg_bg_sampler.batch_size_per_image),
        "heads": (heads.fg_bg_sampler.batch_size_per_image, heads.fg_bg_sampler.positive_fraction,
                  heads.detections_per_img),
        "roi_align": (heads.box_roi_pool.output_size, heads.box_roi_pool.sampling_ratio),
        "transform": (images.image_sizes, images.tensors[0, :, 0, 0].tolist()),
    }


def test_every_model_key_changes_the_built_model(tmp_path):
    import dataclasses

    import torchvision

    from digitdet.config import ModelConfig

    assert set(KEY_VALUES) == {f.name for f in dataclasses.fields(ModelConfig)}
    torch.manual_seed(1)
    weights = tmp_path / "r18.pt"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    small = ["model.backbone=resnet18", "model.fpn_channels=32", "model.representation_size=32"]
    for key, (a, b) in KEY_VALUES.items():
        prints = []
        for extra in (a, b):
            cfg = load_config([], [*small, *(o.format(weights=weights) for o in extra)])
            torch.manual_seed(0)  # identical random init: only the key differs
            prints.append(_fingerprint(build_model(cfg)))
        assert prints[0] != prints[1], f"model.{key} does not change the built model"


def test_box_head_width_follows_representation_size():
    cfg = load_config([], ["model.backbone=resnet18", "model.representation_size=96", "model.fpn_channels=64",
                           "model.roi_output_size=5"])
    heads = build_model(cfg).roi_heads
    assert heads.box_head.fc6.in_features == 64 * 5 * 5 and heads.box_head.fc6.out_features == 96
    assert heads.box_head.fc7.out_features == 96 and heads.box_predictor.cls_score.in_features == 96
    assert heads.box_predictor.cls_score.out_features == 11 and heads.box_predictor.bbox_pred.out_features == 44


def test_max_size_caps_images_when_min_size_is_null():
    cfg = load_config([], ["model.backbone=resnet18", "model.min_size=null", "model.max_size=200",
                           "predict.score_thresh=0.0"])
    model = build_model(cfg).eval()
    with torch.no_grad():
        images, _ = model.transform([torch.rand(3, 40, 400), torch.rand(3, 30, 150)])
        assert images.image_sizes == [(20, 200), (30, 150)]  # the long one halved, the short one kept
        out = model([torch.rand(3, 40, 400)])[0]
    assert len(out["boxes"]) > 0
    assert out["boxes"][:, 2].max() > 200  # mapped back to the 400-px input, not left at 200
    assert (out["boxes"][:, 2] <= 400 + 1e-3).all() and (out["boxes"][:, 3] <= 40 + 1e-3).all()
    model.train()
    target = {"boxes": torch.tensor([[100.0, 4.0, 140.0, 36.0]]), "labels": torch.tensor([3])}
    images, targets = model.transform([torch.rand(3, 40, 400)], [target])
    assert images.image_sizes == [(20, 200)] and targets[0]["boxes"].tolist() == [[50.0, 2.0, 70.0, 18.0]]


def test_lookalike_class_trains_twelve_classes_and_folds_into_background_at_inference():
    from digitdet.model import LookalikePredictor

    torch.manual_seed(0)
    cfg = load_config([], ["model.backbone=resnet18", "model.fpn_channels=32", "model.representation_size=32",
                           "model.lookalike_class=true", "model.min_size=[64]", "model.max_size=128",
                           "predict.score_thresh=0.0"])
    model = build_model(cfg)
    head = model.roi_heads.box_predictor
    assert isinstance(head, LookalikePredictor)
    assert head.cls_score.out_features == 12 and head.bbox_pred.out_features == 48
    # Training accepts label 11 (a lookalike) beside digits and learns from it.
    model.train()
    image = torch.rand(3, 64, 96)
    target = {"boxes": torch.tensor([[10.0, 10.0, 30.0, 50.0], [40.0, 10.0, 60.0, 50.0]]),
              "labels": torch.tensor([3, 11])}
    losses = model([image], [target])
    assert all(torch.isfinite(v) for v in losses.values())
    losses["loss_classifier"].backward()
    assert head.cls_score.weight.grad[11].abs().sum() > 0
    # Inference: 11 classes, the digits' probabilities those of the full 12-way softmax.
    head.eval()
    x = torch.randn(5, 32)
    scores, deltas = head(x)
    full = torch.softmax(head.cls_score(x), dim=1)
    assert scores.shape == (5, 11) and deltas.shape == (5, 44)
    assert torch.allclose(torch.softmax(scores, dim=1)[:, 1:], full[:, 1:11], atol=1e-6)
    assert torch.allclose(torch.softmax(scores, dim=1)[:, 0], full[:, 0] + full[:, 11], atol=1e-6)
    model.eval()
    with torch.no_grad():
        out = model([image])[0]
    assert len(out["labels"]) and int(out["labels"].max()) <= 10 and int(out["labels"].min()) >= 1


def test_an_eleven_class_reader_starts_a_lookalike_model_reading_almost_as_it_did():
    """model.build.with_lookalike_rows: an 11-class model's weights load into a lookalike-class model (as
    train.init_weights does), every other weight unchanged, and its folded digit probabilities start within
    2 % of the source model's. Mutations: a zero lookalike row (background's mass doubles: 0.5x at first);
    no bias offset; return the state as it is (the load fails)."""
    torch.manual_seed(0)
    small = ["model.backbone=resnet18", "model.fpn_channels=32", "model.representation_size=32",
             "model.min_size=[64]", "model.max_size=128"]
    source = build_model(load_config([], small)).eval()
    target = build_model(load_config([], [*small, "model.lookalike_class=true"])).eval()
    from digitdet.model.build import with_lookalike_rows

    state = with_lookalike_rows(source.state_dict(), target)
    target.load_state_dict(state)
    plain = source.state_dict()
    assert with_lookalike_rows(plain, source) is plain  # no lookalike class: as it is
    for k, v in source.state_dict().items():
        if "box_predictor" not in k:
            assert torch.equal(target.state_dict()[k], v), k
    with torch.no_grad():
        source.roi_heads.box_predictor.cls_score.bias[0] = -2.0  # digits likely: the fold shows
        state = with_lookalike_rows(source.state_dict(), target)
        target.load_state_dict(state)
        x = torch.randn(64, 32)
        before = torch.softmax(source.roi_heads.box_predictor(x)[0], 1)[:, 1:]
        after = torch.softmax(target.roi_heads.box_predictor(x)[0], 1)[:, 1:]
    assert after.shape == before.shape and bool((after <= before).all())
    assert float((after / before).min()) > 0.98


def test_a_lookalike_readers_weights_start_a_model_without_the_class():
    """model.build.with_lookalike_rows the other way: the bundled whole-photo reader has the lookalike class;
    `--config reader train.init_weights=bundled:reader` builds a model without it. The lookalike row is
    dropped, every other weight loads unchanged. Mutation: the 12-row state returned as it is (the load
    fails)."""
    from digitdet.model.build import with_lookalike_rows

    torch.manual_seed(0)
    small = ["model.backbone=resnet18", "model.fpn_channels=32", "model.representation_size=32",
             "model.min_size=[64]", "model.max_size=128"]
    wide = build_model(load_config([], [*small, "model.lookalike_class=true"])).eval()
    plain = build_model(load_config([], small)).eval()
    plain.load_state_dict(with_lookalike_rows(wide.state_dict(), plain))
    for k, v in plain.state_dict().items():
        w = wide.state_dict()[k]
        assert torch.equal(v, w[: v.shape[0]] if v.dim() else w), k
    assert plain.roi_heads.box_predictor.cls_score.weight.shape[0] == 11


def test_frozen_stages_keep_the_loaded_trunk_and_its_statistics(tmp_path):
    import torchvision
    from torchvision.ops import FrozenBatchNorm2d

    torch.manual_seed(3)
    weights = tmp_path / "r18.pt"
    r18 = torchvision.models.resnet18()
    for bn in (m for m in r18.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    torch.save(r18.state_dict(), weights)
    cfg = load_config([], ["model.backbone=resnet18", "model.fpn_channels=32", "model.representation_size=32",
                           f"model.backbone_weights={weights}", "model.frozen_stages=2", "model.min_size=[64]",
                           "model.max_size=128"])
    model = build_model(cfg)
    trunk = model.backbone.body
    assert isinstance(trunk.bn1, FrozenBatchNorm2d) and isinstance(trunk.layer1[0].bn2, FrozenBatchNorm2d)
    assert isinstance(trunk.layer2[0].bn1, torch.nn.BatchNorm2d)  # layer2 on trains as before
    torch.testing.assert_close(trunk.layer1[1].bn1.running_mean, r18.layer1[1].bn1.running_mean)
    frozen = {k: v.clone() for k, v in trunk.state_dict().items() if k.startswith(("conv1", "bn1", "layer1."))}
    assert not any(p.requires_grad for p in trunk.layer1.parameters()) and not trunk.conv1.weight.requires_grad
    assert all(p.requires_grad for p in trunk.layer2.parameters())
    model.train()
    target = {"boxes": torch.tensor([[10.0, 10.0, 30.0, 50.0]]), "labels": torch.tensor([3])}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        loss = sum(model([torch.rand(3, 64, 96)], [target]).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = trunk.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen.items())  # weights and statistics untouched
    assert not torch.equal(after["layer2.0.bn1.running_mean"], r18.layer2[0].bn1.running_mean)
    with pytest.raises(ConfigError, match="frozen_stages"):
        load_config([], ["model.backbone=resnet18", "model.returned_layers=[2,3]", "model.anchor_preset=custom",
                         "model.anchor_sizes=[[8],[16],[32]]", "model.frozen_stages=5"])


@pytest.mark.parametrize("configs, scales", [(["cpu"], [1 / 8, 1 / 16]), ([], [1 / 4, 1 / 8, 1 / 16, 1 / 32])])
def test_roi_scales_are_the_strides_whatever_the_first_image(configs, scales):
    # torchvision infers them on the first call from padded sizes: a 44x59 image first gave 1/4 for 1/8.
    model = build_model(load_config(configs, ["model.backbone=resnet18", "model.min_size=null"])).eval()
    pool = model.roi_heads.box_roi_pool
    assert pool.scales == scales
    with torch.no_grad():
        model([torch.rand(3, 44, 59)])
    assert pool.scales == scales and pool.map_levels.k_min == -torch.log2(torch.tensor(scales[0])).item()


@pytest.mark.parametrize("overrides, folded", [(["model.frozen_stages=0"], 15), (["model.frozen_stages=2"], 15),
                                               (["model.norm=groupnorm", "model.frozen_stages=0"], 0)])
def test_folding_the_norms_into_the_convs_keeps_the_features(overrides, folded):
    from torchvision.ops import FrozenBatchNorm2d

    from digitdet.model.inference import fold_batchnorm

    cfg = load_config(["cpu"], ["model.backbone_weights=null", "model.representation_size=32", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg)
    norms = (torch.nn.BatchNorm2d, FrozenBatchNorm2d)
    for bn in (m for m in model.modules() if isinstance(m, norms)):  # statistics a trained trunk would have
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.bias.data.uniform_(-1, 1)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(model.train())
    model.eval()
    x = torch.rand(1, 3, 88, 120)
    with torch.inference_mode():
        before = model.backbone(x)
        assert fold_batchnorm(model) == folded
        after = model.backbone(x)
    assert not any(isinstance(m, norms) for m in model.modules())
    for k in before:
        torch.testing.assert_close(after[k], before[k], rtol=1e-4, atol=1e-4)


def test_a_model_built_to_be_loaded_skips_the_init_and_loads_exactly():
    cfg = load_config(["cpu"], ["model.backbone_weights=null", "model.frozen_stages=0"])
    empty = build_model(cfg, initialise=False)
    torch.manual_seed(0)
    trained = build_model(cfg)  # after a skipped init, torch.nn.init fills again
    conv = trained.backbone.body.layer1[0].conv1.weight
    assert 0.03 < float(conv.detach().std()) < 0.1  # kaiming, fan-out 576: ~0.06
    assert empty.state_dict().keys() == trained.state_dict().keys()
    empty.load_state_dict(trained.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(empty.state_dict().values(), trained.state_dict().values()))
