"""build_model(cfg): a torchvision FasterRCNN assembled from parts (ResNet+FPN, anchors, RoIAlign).

Box format everywhere: xyxy in input-image pixels. Labels: 0 = background, 1..10 = digits 0..9
(the same numbers as COCO `category_id`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.transform import (
    GeneralizedRCNNTransform,
    _resize_image_and_masks,
    resize_boxes,
)
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from digitdet.config import Config
from digitdet.data.coco import LOOKALIKE_LABEL  # 11: trained with model.lookalike_class, never output
from digitdet.errors import ConfigError, first_line

NUM_CLASSES = 11  # background + digits 0..9

_RESNETS = {
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
    "resnet101": resnet.resnet101,
}


class KeepSizeTransform(GeneralizedRCNNTransform):
    """Normalizes and batches like torchvision's transform but never enlarges: an image keeps the size the
    data pipeline produced unless its longer side exceeds max_size, when it is scaled down to it.

    torchvision's default resizes every image to 800 px; with min_size None we keep the size the data
    pipeline produced (e.g. after bicubic upsampling), so upsampling experiments mean what they say, and
    max_size still bounds memory. Boxes come back in input pixels (torchvision's postprocess).
    """

    def resize(self, image, target=None):
        h, w = image.shape[-2:]
        if max(h, w) <= self.max_size:
            return image, target
        # scale = min(min_side / min_side, max_size / max_side): exactly the max_size cap.
        image, target = _resize_image_and_masks(image, float(min(h, w)), float(self.max_size), target)
        if target is not None:
            target["boxes"] = resize_boxes(target["boxes"], (h, w), image.shape[-2:])
        return image, target


def _norm_layer(kind: str):
    if kind == "groupnorm":
        # 32 groups as in GN's paper; every ResNet/FPN width here is divisible by 32.
        return lambda channels: nn.GroupNorm(32, channels)
    return nn.BatchNorm2d  # trainable statistics: random init has no statistics worth freezing


def make_trunk(name: str, norm: str) -> nn.Module:
    """A randomly initialised torchvision ResNet with digitdet's norm layer (the classifier head unused)."""
    if name not in _RESNETS:
        raise ConfigError(f"model.backbone: unknown backbone {name!r} (choose from {sorted(_RESNETS)})")
    # zero_init_residual starts every block as identity: deep nets trained from scratch converge.
    return _RESNETS[name](weights=None, norm_layer=_norm_layer(norm), zero_init_residual=True)


_INIT_FILLS = ("uniform_", "normal_", "constant_", "ones_", "zeros_", "kaiming_uniform_", "kaiming_normal_",
               "xavier_uniform_", "xavier_normal_", "trunc_normal_")


@contextlib.contextmanager
def skipped_init():
    """torch.nn.init's fill functions as no-ops while modules are built (transformers' no_init_weights does
    the same): tensors are allocated and never filled, for a model whose every weight is loaded next. The
    random init of a ResNet-18 (layer4 included, dropped later) was 0.17 of a model's 0.23 s build, paid for
    both readers on each `digitdet read`. Not the meta device: building under it imports torch._dynamo
    (1.1 s, 150 MB; tests/test_startup.py). Patches the module, so no other thread should build meanwhile."""
    saved = {name: getattr(nn.init, name) for name in _INIT_FILLS}
    for name in _INIT_FILLS:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, fill in saved.items():
            setattr(nn.init, name, fill)


def build_backbone(
    *,
    name: str,
    norm: str,
    returned_layers: tuple[int, ...],
    out_channels: int,
    weights_path: str | None = None,
    frozen_stages: int = 0,
) -> BackboneWithFPN:
    """ResNet trunk (random init, or a local state dict) + FPN over the chosen stages + max-pool level.

    Output feature names are '0'..str(len(returned_layers)-1) plus 'pool'. Stages after the deepest
    returned one are not part of the model (torchvision's IntermediateLayerGetter drops them).
    """
    trunk = make_trunk(name, norm)
    if weights_path:
        load_trunk_weights(trunk, weights_path, stages=max(returned_layers))
    freeze_stages(trunk, frozen_stages)
    stage_channels = trunk.inplanes // 8  # channels of layer1's output (64 or 256)
    in_channels = [stage_channels * 2 ** (i - 1) for i in returned_layers]
    return_layers = {f"layer{i}": str(k) for k, i in enumerate(returned_layers)}
    return BackboneWithFPN(
        trunk,
        return_layers=return_layers,
        in_channels_list=in_channels,
        out_channels=out_channels,
        extra_blocks=LastLevelMaxPool(),
    )


def freeze_stages(trunk: nn.Module, stages: int) -> None:
    """Keep the first `stages` of the trunk as they are (1 = conv1 + bn1, 2 = also layer1, ...): their
    weights get no gradient and their BatchNorm layers become FrozenBatchNorm2d with the same statistics,
    so training neither moves nor re-estimates them, and their backward pass is skipped."""
    names = ["conv1", "bn1", *(f"layer{i}" for i in range(1, stages))] if stages > 0 else []
    for name in names:
        module = getattr(trunk, name)
        module.requires_grad_(False)
        setattr(trunk, name, _frozen_norms(module))


def _frozen_norms(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        for key in ("weight", "bias", "running_mean", "running_var"):
            getattr(frozen, key).copy_(getattr(module, key).detach())
        return frozen
    for name, child in module.named_children():
        setattr(module, name, _frozen_norms(child))
    return module


BUNDLED = "bundled:"  # model.backbone_weights=bundled:NAME -> src/digitdet/weights/NAME.pt


def resolve_weights(path: str) -> Path:
    """A file path, or `bundled:NAME` for a trunk shipped inside the package."""
    if path.startswith(BUNDLED):
        name = path[len(BUNDLED):]
        file = Path(__file__).resolve().parent.parent / "weights" / f"{name}.pt"
        if not file.is_file():
            shipped = sorted(p.stem for p in file.parent.glob("*.pt")) if file.parent.is_dir() else []
            raise ConfigError(f"model.backbone_weights: no bundled trunk {name!r} (shipped: {shipped or 'none'})")
        return file
    return Path(path)


def load_trunk_weights(trunk: nn.Module, path: str, stages: int = 4) -> None:
    """Load a local ResNet state dict into `trunk`: a plain one (e.g. ImageNet weights on disk), a
    `digitdet pretrain` file (float16, stages up to the one it was trained with), or the trunk of a packed
    reader (`bundled:reader-resnet18-l3`: a whole detector's weights under 'model'). Only the stem and
    layer1..layer`stages` must match; the rest is ignored."""
    file = resolve_weights(path)
    if not file.is_file():
        raise ConfigError(f"model.backbone_weights: {file} not found")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise ConfigError(f"model.backbone_weights: {file} is not a torch state dict ({first_line(exc)})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    elif isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a packed reader: the whole detector's weights
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ConfigError(f"model.backbone_weights: {file} is not a state dict of tensors")
    used = ("conv1.", "bn1.", *(f"layer{k}." for k in range(1, stages + 1)))
    # A detector's trunk sits under backbone.body.; only the trunk is taken (FPN and heads start random).
    state = {k.removeprefix("module.").removeprefix("backbone.body."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if k.startswith(used)}
    own = {k: v for k, v in trunk.state_dict().items() if k.startswith(used)}
    missing = sorted(set(own) - set(state))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or wrong or not state:
        parts = [f"{len(keys)} {label} (e.g. {keys[0]})" for label, keys in (("missing", missing),
                                                                             ("wrong shape", wrong)) if keys]
        raise ConfigError(f"model.backbone_weights: {file} does not match the trunk: "
                          f"{'; '.join(parts) or 'no trunk weights in it'}")
    state = {k: v.to(own[k].dtype) for k, v in state.items()}  # float16 storage -> the model's dtype
    trunk.load_state_dict(state, strict=False)


def build_anchor_generator(
    sizes: tuple[tuple[int, ...], ...], aspect_ratios: tuple[float, ...]
) -> AnchorGenerator:
    """One size group per feature level; the same ratios (height / width) on every level."""
    counts = {len(s) for s in sizes}
    if len(counts) != 1:
        # The shared RPN head predicts a fixed number of anchors per location on every level.
        raise ConfigError(f"anchors: every level needs the same number of sizes, got {sizes}")
    return AnchorGenerator(sizes=sizes, aspect_ratios=(tuple(aspect_ratios),) * len(sizes))


class LookalikePredictor(FastRCNNPredictor):
    """The box predictor with one more class, "lookalike" (a letter, a digit cut by the image edge),
    trained on the lookalike boxes as a class of its own, so that its look gets positive examples instead
    of the rare negative sample. At inference it is folded into the background (logsumexp of the two
    logits): the digits keep exactly the probabilities of the full softmax, and every caller (pyramid,
    reading, ONNX export) sees the usual 11 classes."""

    def __init__(self, in_channels: int) -> None:
        super().__init__(in_channels, NUM_CLASSES + 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores, deltas = super().forward(x)
        if self.training:
            return scores, deltas
        background = torch.logsumexp(scores[:, [0, LOOKALIKE_LABEL]], dim=1, keepdim=True)
        return torch.cat([background, scores[:, 1:LOOKALIKE_LABEL]], dim=1), deltas[:, : 4 * NUM_CLASSES]


LOOKALIKE_START_BIAS = -4.0  # the new class starts this far under background: e**-4 folds in ~2 % of its mass


def with_lookalike_rows(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights of a model without the lookalike class, fitted to `model` when it has one (train.init_weights
    from an 11-class reader): the lookalike row of the class scores starts as a copy of background's with
    its bias LOOKALIKE_START_BIAS lower (the folded probabilities start within 2 % of the source model's,
    and it learns from there), its box deltas as background's (never used). The other way round (a
    lookalike reader, the bundled whole-photo reader, fine-tuned with a config without the class) the
    lookalike row is dropped: its share spreads over the other classes until training relearns windows and
    letters as background. Other states are returned as they are."""
    head = "roi_heads.box_predictor."
    w = state.get(head + "cls_score.weight")
    wide = isinstance(model.roi_heads.box_predictor, LookalikePredictor)
    if w is not None and not wide and len(w) == NUM_CLASSES + 1:
        out = dict(state)
        for k, rows in (("cls_score.weight", NUM_CLASSES), ("cls_score.bias", NUM_CLASSES),
                        ("bbox_pred.weight", 4 * NUM_CLASSES), ("bbox_pred.bias", 4 * NUM_CLASSES)):
            out[head + k] = state[head + k][:rows]
        return out
    if not wide or w is None or len(w) != NUM_CLASSES:
        return state
    out = dict(state)
    out[head + "cls_score.weight"] = torch.cat([w, w[:1]])
    bias = state[head + "cls_score.bias"]
    out[head + "cls_score.bias"] = torch.cat([bias, bias[:1] + LOOKALIKE_START_BIAS])
    for k in ("weight", "bias"):
        d = state[head + "bbox_pred." + k]
        out[head + "bbox_pred." + k] = torch.cat([d, d[:4]])
    return out


def fix_roi_scales(roi_pool: MultiScaleRoIAlign, returned_layers) -> None:
    """Set the RoI pooler's feature-map scales from the trunk's strides (layer k: 1 / 2**(k+1)) once.

    torchvision infers them on the pooler's first call, from that call's padded feature and image sizes,
    and keeps them: a first image of 44x59 px (padded to 64) rounds layer2's 1/8 to 1/4, and every later
    call pools from the wrong place (a tight crop read first made the bundled reader read nothing after
    it). A 512-px square through the same inference makes exact sizes."""
    side = 512
    features = {name: torch.zeros(1, 1, side >> (k + 1), side >> (k + 1))
                for name, k in zip(roi_pool.featmap_names, returned_layers)}
    with torch.no_grad():
        roi_pool(features, [torch.tensor([[0.0, 0.0, 8.0, 8.0]])], [(side, side)])


def build_model(cfg: Config, *, initialise: bool = True) -> FasterRCNN:
    """Assemble the detector described by `cfg` (randomly initialised unless backbone_weights is set).
    `initialise=False`: no weight is filled (skipped_init), for a state dict loaded whole next
    (model.checkpoint.model_from_state)."""
    with contextlib.nullcontext() if initialise else skipped_init():
        return _build_model(cfg)


def _build_model(cfg: Config) -> FasterRCNN:
    m, p = cfg.model, cfg.predict
    backbone = build_backbone(
        name=m.backbone,
        norm=m.norm,
        returned_layers=m.returned_layers,
        out_channels=m.fpn_channels,
        weights_path=m.backbone_weights,
        frozen_stages=m.frozen_stages,
    )
    featmaps = [str(k) for k in range(len(m.returned_layers))]
    roi_pool = MultiScaleRoIAlign(featmaps, m.roi_output_size, sampling_ratio=m.roi_sampling_ratio)
    fix_roi_scales(roi_pool, m.returned_layers)
    # The box head is built here: FasterRCNN has no representation_size argument (its **kwargs would
    # swallow one silently and build a 1024-wide head whatever the config says).
    box_head = TwoMLPHead(m.fpn_channels * m.roi_output_size**2, m.representation_size)
    model = FasterRCNN(
        backbone,
        num_classes=None,  # given by the predictor
        box_head=box_head,
        box_predictor=(LookalikePredictor(m.representation_size) if m.lookalike_class
                       else FastRCNNPredictor(m.representation_size, NUM_CLASSES)),
        min_size=m.min_size or 800,  # replaced below when None
        max_size=m.max_size,
        image_mean=list(m.image_mean),
        image_std=list(m.image_std),
        rpn_anchor_generator=build_anchor_generator(cfg.anchor_sizes(), m.aspect_ratios),
        box_roi_pool=roi_pool,
        rpn_pre_nms_top_n_train=m.rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=m.rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=m.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=m.rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=m.rpn_batch_size_per_image,
        box_batch_size_per_image=m.box_batch_size_per_image,
        box_positive_fraction=m.box_positive_fraction,
        box_detections_per_img=m.box_detections_per_img,
        box_score_thresh=p.score_thresh,
        box_nms_thresh=p.nms_thresh,
    )
    if m.min_size is None:
        model.transform = KeepSizeTransform(
            min_size=1, max_size=m.max_size, image_mean=list(m.image_mean), image_std=list(m.image_std)
        )
    return model


def set_postprocess(model: FasterRCNN, *, score_thresh: float | None = None, nms_thresh: float | None = None):
    """Change the detection-time thresholds of a built model (sweeps need no rebuild)."""
    if score_thresh is not None:
        model.roi_heads.score_thresh = score_thresh
    if nms_thresh is not None:
        model.roi_heads.nms_thresh = nms_thresh
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
