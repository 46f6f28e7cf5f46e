"""(image, target) -> (image, target) transforms for digit detection.

Every op is a small callable class taking and returning the pair, usable alone in tests. Boxes are xyxy
pixels in target['boxes'], labels in target['labels'] (1..10) and stay aligned with them.

Pipeline from `build_transforms`: upsample (bicubic, x k) -> contrast -> sharpen (PIL, deterministic)
-> float tensor in [0, 1] -> [train + augment: small affine/perspective jitter, colour jitter, blur,
noise -> drop boxes pushed out of the image] -> plain tensors. Deliberately absent:
  * horizontal flip: it mirrors glyphs (2 <-> 5-ish, 7 unreadable) and reverses the digit order;
  * Normalize: the model (GeneralizedRCNNTransform) normalizes exactly once.
Random ops use torchvision.transforms.v2, which draws from the torch RNG, so `torch.manual_seed`
makes augmentation reproducible (DataLoader workers get distinct, seeded torch RNGs). v2 and tv_tensors are
imported only by the augmenting ops: importing them imports torch._dynamo (about 1 s and 150 MB), which
reading a photo never needs (the evaluation pipeline gives the very same tensors without them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image, ImageEnhance
from torchvision.transforms.functional import pil_to_tensor

from digitdet.config import DataConfig
from digitdet.errors import DigitdetError

Pair = tuple[Any, dict]
Op = Callable[[Any, dict], Pair]


class Compose:
    """Apply ops in order to the (image, target) pair."""

    def __init__(self, ops: Sequence[Op]) -> None:
        self.ops = list(ops)

    def __call__(self, image: Any, target: dict) -> Pair:
        for op in self.ops:
            image, target = op(image, target)
        return image, target

    def __repr__(self) -> str:
        inner = "".join(f"\n  {op!r}," for op in self.ops)
        return f"{type(self).__name__}([{inner}\n])"


class Upsample:
    """Bicubic resize of a PIL image by `factor`; boxes scale by the same (per-axis, after rounding) factor.

    Small SVHN digits (often < 15 px tall) are easier to detect after x2..x4 upsampling; factor 1 is a
    no-op. Predictions must be divided by the same per-axis factor to return to original pixels.
    """

    def __init__(self, factor: float) -> None:
        if factor <= 0:
            raise ValueError(f"upsample factor must be > 0, got {factor}")
        self.factor = float(factor)

    def __call__(self, image: Image.Image, target: dict) -> Pair:
        if self.factor == 1.0:
            return image, target
        width, height = image.size
        new_w, new_h = max(1, round(width * self.factor)), max(1, round(height * self.factor))
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
        scale = torch.tensor([new_w / width, new_h / height] * 2, dtype=torch.float32)
        target = {**target, "boxes": torch.as_tensor(target["boxes"], dtype=torch.float32) * scale}
        return image, target

    def __repr__(self) -> str:
        return f"Upsample({self.factor:g})"


class Contrast:
    """PIL ImageEnhance.Contrast by `factor` (1 = unchanged); boxes untouched."""

    def __init__(self, factor: float) -> None:
        self.factor = float(factor)

    def __call__(self, image: Image.Image, target: dict) -> Pair:
        if self.factor == 1.0:
            return image, target
        return ImageEnhance.Contrast(image).enhance(self.factor), target

    def __repr__(self) -> str:
        return f"Contrast({self.factor:g})"


class Sharpen:
    """PIL ImageEnhance.Sharpness by `factor` (1 = unchanged, > 1 sharper); boxes untouched."""

    def __init__(self, factor: float) -> None:
        self.factor = float(factor)

    def __call__(self, image: Image.Image, target: dict) -> Pair:
        if self.factor == 1.0:
            return image, target
        return ImageEnhance.Sharpness(image).enhance(self.factor), target

    def __repr__(self) -> str:
        return f"Sharpen({self.factor:g})"


def _bounding_boxes(boxes: Any, canvas_size: tuple[int, int]):
    """XYXY tv_tensors.BoundingBoxes without automatic clamping, so SanitizeBoxes can see how much of a box
    was pushed outside. torchvision < 0.23 has no clamping_mode and always clamps, which would silently
    teach half-cut digits as whole ones: that is an error, not a fallback."""
    import torchvision
    from torchvision import tv_tensors

    data = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    try:
        return tv_tensors.BoundingBoxes(data, format="XYXY", canvas_size=canvas_size, clamping_mode=None)
    except TypeError:
        raise DigitdetError(
            f"torchvision {torchvision.__version__} clamps boxes during augmentation, so cut digits cannot be "
            "dropped: digitdet needs torchvision >= 0.23 (pip install -U torchvision)"
        ) from None


def unit_float(image: torch.Tensor) -> torch.Tensor:
    """An image tensor as float32 in [0, 1]: integers times 1 / their maximum (as torchvision's to_dtype
    does), floats as float32. ToTensor's conversion, and reading.pyramid.as_float's for each view of a
    photo kept as bytes: one function, so the two give the same bits."""
    if image.is_floating_point():
        return image.to(torch.float32)
    return image.to(torch.float32).mul_(1.0 / torch.iinfo(image.dtype).max)


class ToTensor:
    """PIL RGB -> float32 (3, H, W) in [0, 1] (integers times 1 / their maximum, as torchvision's to_dtype
    does); boxes -> float32 (N, 4). `for_augment`: as tv_tensors.Image and BoundingBoxes, which
    torchvision.transforms.v2 moves together. `keep_bytes`: a uint8 image stays uint8 (3, H, W), for a
    detector that converts each view as this would (reading.pyramid.as_float): a 4 MP photo is 12 MB, not 48."""

    def __init__(self, for_augment: bool = False, keep_bytes: bool = False) -> None:
        self.for_augment = bool(for_augment)
        self.keep_bytes = bool(keep_bytes) and not self.for_augment

    def __call__(self, image: Image.Image, target: dict) -> Pair:
        if isinstance(image, Image.Image):
            # pil_to_tensor gives a (3, H, W) view of PIL's (H, W, 3) bytes: laid out plainly while still
            # bytes, the float copy is the only one (made contiguous as float, a 4 MP photo held 2 x 46 MB).
            image = pil_to_tensor(image.convert("RGB")).contiguous()
        image = torch.as_tensor(image)
        if not (self.keep_bytes and image.dtype == torch.uint8):
            image = unit_float(image)
        if not self.for_augment:
            return image, {**target, "boxes": torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4)}
        from torchvision import tv_tensors

        canvas = (image.shape[-2], image.shape[-1])
        return tv_tensors.Image(image), {**target, "boxes": _bounding_boxes(target["boxes"], canvas)}

    def __repr__(self) -> str:
        return f"ToTensor(for_augment={self.for_augment}, keep_bytes={self.keep_bytes})"


class RandomGeometry:
    """Small random scale/rotation (about the centre) and perspective jitter; boxes move with the image.

    Border pixels are filled with the image's mean colour: black corners would be a strong cue that
    does not exist at test time. There is no flip and no translation beyond what scaling implies.
    """

    def __init__(self, scale: float = 0.1, rotate: float = 5.0, perspective: float = 0.1, p_perspective=0.5):
        self.scale, self.rotate, self.perspective = float(scale), float(rotate), float(perspective)
        self.p_perspective = float(p_perspective)

    def __call__(self, image: torch.Tensor, target: dict) -> Pair:
        from torchvision.transforms import v2

        fill = [float(v) for v in image.float().mean(dim=(-2, -1))]
        if self.scale > 0 or self.rotate > 0:
            scale = (max(0.05, 1.0 - self.scale), 1.0 + self.scale)
            affine = v2.RandomAffine(degrees=self.rotate, scale=scale, interpolation=v2.InterpolationMode.BILINEAR,
                                     fill=fill)
            image, target = affine(image, target)
        if self.perspective > 0:
            persp = v2.RandomPerspective(self.perspective, p=self.p_perspective, fill=fill)
            image, target = persp(image, target)
        return image, target

    def __repr__(self) -> str:
        args = f"scale={self.scale:g}, rotate={self.rotate:g}, perspective={self.perspective:g}"
        return f"RandomGeometry({args})"


class SanitizeBoxes:
    """Clamp boxes to the image and drop, with their labels, those that became degenerate
    (side < min_size px) or that lost more than (1 - min_visible) of their area outside the image:
    a digit cut in half should not be taught as a whole digit."""

    def __init__(self, min_size: float = 1.0, min_visible: float = 0.5) -> None:
        self.min_size, self.min_visible = float(min_size), float(min_visible)

    def __call__(self, image: torch.Tensor, target: dict) -> Pair:
        boxes = target["boxes"]
        height, width = image.shape[-2], image.shape[-1]
        raw = boxes.as_subclass(torch.Tensor).reshape(-1, 4).float()
        clamped = raw.clone()
        clamped[:, 0::2] = clamped[:, 0::2].clamp(0, width)
        clamped[:, 1::2] = clamped[:, 1::2].clamp(0, height)
        cw, ch = clamped[:, 2] - clamped[:, 0], clamped[:, 3] - clamped[:, 1]
        area = ((raw[:, 2] - raw[:, 0]) * (raw[:, 3] - raw[:, 1])).clamp(min=1e-6)
        keep = (cw >= self.min_size) & (ch >= self.min_size) & (cw * ch >= self.min_visible * area)
        out = {**target, "labels": target["labels"][keep]}
        from torchvision import tv_tensors

        if isinstance(boxes, tv_tensors.BoundingBoxes):
            out["boxes"] = tv_tensors.wrap(clamped[keep], like=boxes)
        else:
            out["boxes"] = clamped[keep]
        return image, out

    def __repr__(self) -> str:
        return f"SanitizeBoxes(min_size={self.min_size:g}, min_visible={self.min_visible:g})"


class Finalize:
    """tv_tensors -> plain tensors: image float32 (3, H, W) (uint8 kept: ToTensor's keep_bytes), boxes
    float32 (N, 4), labels int64 (N,)."""

    def __call__(self, image: Any, target: dict) -> Pair:
        image = torch.as_tensor(image).as_subclass(torch.Tensor)
        image = (image if image.dtype == torch.uint8 else image.to(torch.float32)).contiguous()
        boxes = torch.as_tensor(target["boxes"]).as_subclass(torch.Tensor).to(torch.float32).reshape(-1, 4)
        labels = torch.as_tensor(target["labels"]).as_subclass(torch.Tensor).to(torch.int64).reshape(-1)
        return image, {**target, "boxes": boxes, "labels": labels}

    def __repr__(self) -> str:
        return "Finalize()"


def photometric_ops() -> list[Op]:
    """Colour jitter, light blur and sensor noise: changes pixels only, never boxes."""
    from torchvision.transforms import v2

    return [
        v2.RandomApply([v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05)], p=0.8),
        v2.RandomApply([v2.GaussianBlur(kernel_size=3, sigma=(0.1, 1.0))], p=0.2),
        v2.RandomApply([v2.GaussianNoise(sigma=0.02, clip=True)], p=0.3),
    ]


def build_transforms(cfg: DataConfig, train: bool, keep_bytes: bool = False) -> Compose:
    """The dataset transform for one split: PIL image + {'boxes' xyxy, 'labels'} -> (float tensor, target).

    Augmentation is added only when train and cfg.augment; evaluation gets the same deterministic
    upsample/contrast/sharpen so train and test images look alike. `keep_bytes` (evaluation only): the
    image tensor stays uint8 (ToTensor's keep_bytes), for a reading.scan detector that takes bytes.
    """
    ops: list[Op] = []
    if cfg.upsample != 1.0:
        ops.append(Upsample(cfg.upsample))
    if cfg.contrast != 1.0:
        ops.append(Contrast(cfg.contrast))
    if cfg.sharpen != 1.0:
        ops.append(Sharpen(cfg.sharpen))
    ops.append(ToTensor(for_augment=train and cfg.augment, keep_bytes=keep_bytes and not train))
    if train and cfg.augment:
        ops.append(RandomGeometry(cfg.aug_scale, cfg.aug_rotate, cfg.aug_perspective))
        ops.extend(photometric_ops())
        ops.append(SanitizeBoxes())
    ops.append(Finalize())
    return Compose(ops)
