"""transforms.py: boxes move with the image by hand-computed amounts; augmentation is safe and seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance
from torchvision import tv_tensors

from digitdet.config import DataConfig
from digitdet.data.coco import DigitDataset
from digitdet.data.transforms import (
    Contrast,
    Finalize,
    RandomGeometry,
    SanitizeBoxes,
    Sharpen,
    ToTensor,
    Upsample,
    build_transforms,
)


def _image(width=40, height=20) -> Image.Image:
    """A structured image (gradient + a dark bar) so contrast/sharpness visibly change pixels."""
    x = np.linspace(60, 200, width)[None, :].repeat(height, 0)
    x[:, width // 4 : width // 4 + 3] = 20
    return Image.fromarray(np.stack([x, x * 0.8, x * 0.5], -1).astype(np.uint8))


def _as_tensor(image: Image.Image) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1]: plain /255, computed without digitdet."""
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def _target(boxes, labels=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    labels = torch.arange(1, len(boxes) + 1) if labels is None else torch.tensor(labels)
    return {"boxes": boxes, "labels": labels.to(torch.int64), "image_id": 7}


def test_upsample_x2_scales_boxes():
    image, target = Upsample(2)(_image(40, 20), _target([[2, 3, 10, 15]]))
    assert image.size == (80, 40)
    assert target["boxes"].tolist() == [[4, 6, 20, 30]]
    assert target["labels"].tolist() == [1] and target["image_id"] == 7


def test_upsample_uses_the_rounded_per_axis_factor():
    # 25 x 15 at x1.5 -> round(37.5) = 38 by 22 (round-half-even of 22.5): factors 38/25 and 22/15.
    image, target = Upsample(1.5)(_image(25, 15), _target([[5, 3, 10, 9]]))
    assert image.size == (38, 22)
    expected = torch.tensor([[5 * 38 / 25, 3 * 22 / 15, 10 * 38 / 25, 9 * 22 / 15]])
    torch.testing.assert_close(target["boxes"], expected)


def test_upsample_is_bicubic():
    img = _image(12, 6)
    image, _ = Upsample(3)(img, _target([]))
    expected = img.resize((36, 18), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(image), np.asarray(expected))


@pytest.mark.parametrize("op", [Upsample(1.0), Contrast(1.0), Sharpen(1.0)])
def test_factor_one_is_a_no_op(op):
    img, tgt = _image(), _target([[1, 2, 3, 4]])
    out_img, out_tgt = op(img, tgt)
    assert out_img is img and out_tgt is tgt


# (op, the PIL enhancer it must apply, a look-alike enhancer it must not apply): expected pixels come
# from PIL called here, not from the class under test.
ENHANCERS = [
    (Contrast, 1.8, ImageEnhance.Contrast, ImageEnhance.Brightness),
    (Sharpen, 3.0, ImageEnhance.Sharpness, ImageEnhance.Color),
]


@pytest.mark.parametrize("cls, factor, enhancer, impostor", ENHANCERS, ids=["contrast", "sharpen"])
def test_contrast_and_sharpen_change_pixels_not_boxes(cls, factor, enhancer, impostor):
    img, tgt = _image(), _target([[2, 3, 10, 15], [12, 3, 21, 15]])
    out_img, out_tgt = cls(factor)(img, tgt)
    assert out_img.size == img.size
    assert not np.array_equal(np.asarray(out_img), np.asarray(img))
    expected = np.asarray(enhancer(img).enhance(factor))
    assert np.array_equal(np.asarray(out_img), expected)
    # The test image tells the look-alike apart, so applying it instead would fail the line above.
    assert not np.array_equal(np.asarray(impostor(img).enhance(factor)), expected)
    assert torch.equal(out_tgt["boxes"], tgt["boxes"]) and torch.equal(out_tgt["labels"], tgt["labels"])


def test_eval_transforms_are_deterministic_plain_tensors():
    cfg = DataConfig(upsample=2.0, contrast=1.5, sharpen=2.0, augment=True)
    tf = build_transforms(cfg, train=False)  # augment is ignored for evaluation
    img = _image(40, 20)
    out1, t1 = tf(img, _target([[2, 3, 10, 15]]))
    out2, _ = tf(img, _target([[2, 3, 10, 15]]))
    assert type(out1) is torch.Tensor and type(t1["boxes"]) is torch.Tensor
    assert out1.dtype == torch.float32 and out1.shape == (3, 40, 80)
    assert out1.min() >= 0.0 and out1.max() <= 1.0
    assert torch.equal(out1, out2)
    assert t1["boxes"].tolist() == [[4, 6, 20, 30]] and t1["labels"].dtype == torch.int64
    # Pixel values: plain /255 of bicubic x2 -> PIL contrast 1.5 -> PIL sharpness 2.0, no Normalize anywhere.
    big = img.resize((80, 40), Image.Resampling.BICUBIC)
    ref = ImageEnhance.Sharpness(ImageEnhance.Contrast(big).enhance(1.5)).enhance(2.0)
    torch.testing.assert_close(out1, _as_tensor(ref), rtol=0, atol=1e-6)
    for wrong in (ImageEnhance.Color(ImageEnhance.Contrast(big).enhance(1.5)).enhance(2.0),
                  ImageEnhance.Sharpness(ImageEnhance.Brightness(big).enhance(1.5)).enhance(2.0)):
        assert not torch.allclose(out1, _as_tensor(wrong), rtol=0, atol=1e-6)  # look-alike enhancers
    assert "Normalize" not in repr(tf) and "Flip" not in repr(build_transforms(cfg, train=True))


def test_plain_config_is_just_to_tensor():
    tf = build_transforms(DataConfig(augment=False), train=True)
    out, tgt = tf(_image(40, 20), _target([[2, 3, 10, 15]]))
    assert out.shape == (3, 20, 40) and tgt["boxes"].tolist() == [[2, 3, 10, 15]]


def _boxes_sorted_by_x(boxes):
    return torch.argsort((boxes[:, 0] + boxes[:, 2]) / 2)


def test_train_augmentation_is_seeded_and_safe():
    cfg = DataConfig(upsample=2.0, augment=True, aug_scale=0.15, aug_rotate=8.0, aug_perspective=0.2)
    tf = build_transforms(cfg, train=True)
    img = _image(60, 30)
    # Four digits left to right, labels 3, 5, 7, 9 in that order, plus one near the border.
    boxes = [[2, 5, 12, 25], [14, 5, 24, 25], [26, 5, 36, 25], [38, 5, 48, 25], [50, 0, 60, 30]]
    labels = [3, 5, 7, 9, 2]
    torch.manual_seed(123)
    first = tf(img, _target(boxes, labels))
    torch.manual_seed(123)
    again = tf(img, _target(boxes, labels))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1]["boxes"], again[1]["boxes"])

    changed = False
    for seed in range(40):
        torch.manual_seed(seed)
        image, target = tf(img, _target(boxes, labels))
        h, w = image.shape[-2:]
        b, lab = target["boxes"], target["labels"]
        assert image.dtype == torch.float32 and image.min() >= 0.0 and image.max() <= 1.0
        assert b.shape[0] == lab.shape[0] and b.dtype == torch.float32 and lab.dtype == torch.int64
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        # Labels stay with their boxes: the inner digits keep their left-to-right order.
        inner = [i for i, label in enumerate(lab.tolist()) if label != 2]
        order = lab[inner][_boxes_sorted_by_x(b[inner])].tolist()
        assert order == sorted(order)
        changed |= not torch.allclose(b[:4], torch.tensor(boxes[:4], dtype=torch.float32) * 2)
    assert changed  # augmentation really moved boxes


def test_no_horizontal_flip():
    cfg = DataConfig(augment=True)  # default jitter
    tf = build_transforms(cfg, train=True)
    img = _image(100, 40)
    for seed in range(60):
        torch.manual_seed(seed)
        _, target = tf(img, _target([[5, 10, 25, 30]]))
        assert len(target["boxes"]) == 1
        centre = (target["boxes"][0, 0] + target["boxes"][0, 2]) / 2
        assert centre < 50, f"seed {seed}: a left-side box moved to the right half"


def test_sanitize_drops_degenerate_and_mostly_outside_boxes():
    image = torch.zeros(3, 20, 40)
    xyxy = [[-2, 2, 8, 10], [35, 2, 55, 10], [10, 5, 10.5, 15], [5, 5, 15, 15]]
    boxes = tv_tensors.BoundingBoxes(xyxy, format="XYXY", canvas_size=(20, 40))
    target = {"boxes": boxes, "labels": torch.tensor([1, 2, 3, 4]), "image_id": 0}
    _, out = SanitizeBoxes()(image, target)
    # box 1: 80 % visible -> clamped and kept; box 2: 25 % visible -> dropped; box 3: 0.5 px wide -> dropped.
    assert out["labels"].tolist() == [1, 4]
    assert out["boxes"].as_subclass(torch.Tensor).tolist() == [[0, 2, 8, 10], [5, 5, 15, 15]]


def test_zero_jitter_geometry_keeps_boxes():
    image, target = ToTensor(for_augment=True)(_image(40, 20), _target([[2, 3, 10, 15]]))
    _, out = RandomGeometry(scale=0.0, rotate=0.0, perspective=0.0)(image, target)
    assert out["boxes"].as_subclass(torch.Tensor).tolist() == [[2, 3, 10, 15]]


def test_train_transforms_on_image_without_digits():
    tf = build_transforms(DataConfig(augment=True), train=True)
    torch.manual_seed(0)
    image, target = tf(_image(), _target([]))
    assert image.shape == (3, 20, 40) and target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)


def test_dataset_with_transforms_on_real_fixture(svhn4_dir):
    cfg = DataConfig(upsample=2.0, augment=True)
    ds = DigitDataset(svhn4_dir / "train", svhn4_dir / "train.json", transforms=build_transforms(cfg, True))
    torch.manual_seed(0)
    index = ds.image_ids.index(3)  # the 52 x 23 image
    image, target = ds[index]
    assert image.shape[0] == 3 and image.shape[-2:] == (46, 104)
    assert len(target["boxes"]) == len(target["labels"]) <= 2
    eval_ds = DigitDataset(svhn4_dir / "train", svhn4_dir / "train.json", build_transforms(cfg, False))
    _, target = eval_ds[index]
    assert target["boxes"].tolist() == [[34, 10, 50, 40], [50, 10, 68, 40]]  # [17,5,8,15],[25,5,9,15] x2


def test_a_torchvision_that_clamps_boxes_is_an_error_not_a_silent_fallback(monkeypatch):
    from digitdet.data import transforms
    from digitdet.errors import DigitdetError

    real = tv_tensors.BoundingBoxes

    class OldBoundingBoxes:  # torchvision < 0.23: no clamping_mode, boxes always clamped
        def __new__(cls, data, *, format, canvas_size, **kwargs):
            if kwargs:
                raise TypeError(f"unexpected keyword argument {next(iter(kwargs))!r}")
            return real(data, format=format, canvas_size=canvas_size)

    monkeypatch.setattr(tv_tensors, "BoundingBoxes", OldBoundingBoxes)
    with pytest.raises(DigitdetError, match=r"torchvision >= 0\.23"):
        ToTensor(for_augment=True)(_image(), _target([[2, 3, 10, 15]]))
    transforms.ToTensor()(_image(), _target([[2, 3, 10, 15]]))  # evaluation never makes BoundingBoxes


def test_geometry_passes_an_interpolation_mode_not_a_string(monkeypatch):
    # torchvision 0.26 rejects interpolation="bilinear" ("should be an InterpolationMode").
    from torchvision.transforms import v2

    from digitdet.data import transforms

    real = v2.RandomAffine

    def strict(*args, interpolation, **kwargs):
        if not isinstance(interpolation, v2.InterpolationMode):
            raise ValueError(f"Argument interpolation should be an InterpolationMode, got {interpolation}")
        return real(*args, interpolation=interpolation, **kwargs)

    monkeypatch.setattr(v2, "RandomAffine", strict)
    image, target = transforms.ToTensor(for_augment=True)(_image(), _target([[2, 3, 10, 15]]))
    out, _ = RandomGeometry(0.1, 5.0, 0.0)(image, target)
    assert out.shape == image.shape


def test_evaluation_tensors_are_torchvisions_without_tv_tensors():
    # The eval pipeline skips tv_tensors (importing them imports torch._dynamo): the same values bit for bit.
    from torchvision.transforms.v2 import functional as F

    pil = _image(37, 23)
    image, target = build_transforms(DataConfig(augment=False), train=False)(pil, _target([[2, 3, 10, 15]]))
    expected = F.to_dtype(F.pil_to_tensor(pil.convert("RGB")), torch.float32, scale=True)
    assert type(image) is torch.Tensor and torch.equal(image, expected)
    assert type(target["boxes"]) is torch.Tensor and target["boxes"].tolist() == [[2, 3, 10, 15]]


def test_to_tensor_makes_one_plain_float_copy():
    # ToTensor lays PIL's (H, W, 3) bytes out as (3, H, W) while they are still bytes, so the float image
    # is born contiguous and Finalize's .contiguous() is free: converting the strided view instead held a
    # second float copy of the photo (2 x 46 MB for 4 MP) until the clone was done.
    img = _image(40, 20)
    image, _ = ToTensor()(img, _target([]))
    assert image.dtype == torch.float32 and image.shape == (3, 20, 40) and image.is_contiguous()
    torch.testing.assert_close(image, _as_tensor(img), rtol=0, atol=1e-7)
    assert Finalize()(image, _target([]))[0].data_ptr() == image.data_ptr()
