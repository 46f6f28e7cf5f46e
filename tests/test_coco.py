"""coco.py + check.py: loading, every validation error, bad image files named by the json, the dataset
(lookalikes included) and collate. Reading images themselves (modes, folders, big photos): test_images.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from digitdet.data.check import check_dataset, format_summary
from digitdet.data.coco import (
    DigitDataset,
    collate_detection,
    load_coco,
    read_image,
    split_paths,
)
from digitdet.errors import DataError

# ---------------------------------------------------------------- valid data


def test_load_valid_split(coco_dir_factory):
    json_path = coco_dir_factory()
    coco = load_coco(json_path)
    assert [rec["id"] for rec in coco.images] == [1, 2, 3]
    # [x, y, w, h] -> xyxy
    np.testing.assert_array_equal(coco.boxes[1], [[2, 3, 10, 15], [12, 3, 21, 15]])
    assert coco.boxes[1].dtype == np.float32
    np.testing.assert_array_equal(coco.labels[1], [2, 10])
    assert coco.labels[1].dtype == np.int64
    assert coco.boxes[3].shape == (0, 4) and coco.labels[3].shape == (0,)  # no digits: still a sample
    assert coco.clipped == 0
    assert coco.raw["categories"][0]["name"] == "0"


def test_small_overshoot_is_clipped_and_counted(coco_dir_factory):
    anns = [
        {"id": 1, "image_id": 1, "bbox": [-1.0, -2.0, 10.0, 12.0], "category_id": 3},  # 1-2 px over
        {"id": 2, "image_id": 1, "bbox": [30.0, 0.0, 11.5, 20.0], "category_id": 4},  # 1.5 px past right
        {"id": 3, "image_id": 2, "bbox": [0.0, 0.0, 30.0, 32.0], "category_id": 5},  # 2 px = 6 % of 32
    ]
    coco = load_coco(coco_dir_factory(annotations=anns))
    assert coco.clipped == 3
    np.testing.assert_array_equal(coco.boxes[1], [[0, 0, 9, 10], [30, 0, 40, 20]])
    np.testing.assert_array_equal(coco.boxes[2], [[0, 0, 30, 30]])


def test_real_svhn_fixture_loads(svhn4_dir):
    coco = load_coco(svhn4_dir / "train.json")
    assert len(coco.images) == 4 and sum(len(b) for b in coco.boxes.values()) == 8
    ds = DigitDataset(svhn4_dir / "train", svhn4_dir / "train.json")
    assert (52, 23) in ds.sizes
    image, target = ds[ds.image_ids.index(3)]
    assert image.shape == (3, 23, 52) and image.dtype == torch.float32
    assert target["labels"].tolist() == [3, 6]
    summary = check_dataset(svhn4_dir)
    assert summary["splits"]["train"]["boxes"] == 8
    assert "train" in format_summary(summary)


# ---------------------------------------------------------------- validation errors


def _error(json_path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_coco(json_path, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    assert "train.json" in msg
    return msg


def test_category_message_format(coco_dir_factory):
    anns = [{"id": 17, "image_id": 2, "bbox": [1, 1, 5, 5], "category_id": 11}]
    msg = _error(coco_dir_factory(annotations=anns))
    assert msg.endswith("train.json: annotation 17 (image 2): category_id 11 outside 1..10")


@pytest.mark.parametrize("category", [0, 11, -1, "3", None, 2.5, True])
def test_bad_category(coco_dir_factory, category):
    anns = [{"id": 5, "image_id": 1, "bbox": [1, 1, 5, 5], "category_id": category}]
    msg = _error(coco_dir_factory(annotations=anns))
    assert "annotation 5" in msg and "category_id" in msg


def test_missing_image_file(coco_dir_factory):
    json_path = coco_dir_factory()
    (json_path.parent / "train" / "2.png").unlink()
    msg = _error(json_path)
    assert "image 2" in msg and "2.png" in msg and "not found" in msg
    assert load_coco(json_path, check_files=False).boxes[2].shape == (1, 4)


def test_undecodable_image(coco_dir_factory):
    json_path = coco_dir_factory()
    bad = json_path.parent / "train" / "2.png"
    bad.write_bytes(b"this is not a png")
    msg = _error(json_path)
    assert "image 2" in msg and "2.png" in msg and "cannot decode" in msg
    with pytest.raises(DataError, match=r"2\.png: cannot decode"):
        read_image(bad)
    with pytest.raises(DataError, match="not found"):
        read_image(json_path.parent / "train" / "99.png")


def test_truncated_image_caught_by_check_and_read(coco_dir_factory):
    json_path = coco_dir_factory(images=[(1, 200, 100), (2, 30, 30), (3, 25, 25)])
    path = json_path.parent / "train" / "1.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header intact, pixels cut off
    load_coco(json_path)  # header-only check passes
    with pytest.raises(DataError, match=r"1\.png: cannot decode"):
        read_image(path)
    with pytest.raises(DataError, match=r"1\.png"):
        check_dataset(json_path.parent)


def test_size_mismatch(coco_dir_factory):
    def edit(raw):
        raw["images"][1]["width"] = 31

    json_path = coco_dir_factory(edit=edit)
    msg = _error(json_path)
    assert "image 2" in msg and "31x30" in msg and "30x30" in msg
    load_coco(json_path, check_files=False)  # only checked against real files


def test_malformed_json_names_line(coco_dir_factory):
    json_path = coco_dir_factory()
    json_path.write_text('{\n "images": [],\n "annotations": [,]\n}')
    msg = _error(json_path)
    assert "invalid JSON" in msg and "line 3" in msg


@pytest.mark.parametrize("key", ["images", "annotations"])
def test_missing_top_level_key(coco_dir_factory, key):
    msg = _error(coco_dir_factory(edit=lambda raw: raw.pop(key)))
    assert f"missing key '{key}'" in msg


@pytest.mark.parametrize("key", ["id", "file_name", "width", "height"])
def test_image_missing_key(coco_dir_factory, key):
    msg = _error(coco_dir_factory(edit=lambda raw: raw["images"][1].pop(key)))
    assert key in msg and ("image 2" in msg or "images[1]" in msg)


@pytest.mark.parametrize("key", ["id", "image_id", "bbox", "category_id"])
def test_annotation_missing_key(coco_dir_factory, key):
    msg = _error(coco_dir_factory(edit=lambda raw: raw["annotations"][2].pop(key)))
    assert key in msg and ("annotation 3" in msg or "annotations[2]" in msg)


def test_duplicate_image_id(coco_dir_factory):
    msg = _error(coco_dir_factory(edit=lambda raw: raw["images"][2].update(id=2)))
    assert "duplicate image id 2" in msg


def test_duplicate_annotation_id(coco_dir_factory):
    msg = _error(coco_dir_factory(edit=lambda raw: raw["annotations"][2].update(id=1)))
    assert "duplicate annotation id 1" in msg


def test_unknown_image_id(coco_dir_factory):
    anns = [{"id": 8, "image_id": 42, "bbox": [1, 1, 5, 5], "category_id": 1}]
    msg = _error(coco_dir_factory(annotations=anns))
    assert "annotation 8" in msg and "unknown image_id 42" in msg


@pytest.mark.parametrize(
    "bbox, words",
    [
        ([1, 1, 0, 5], "degenerate"),
        ([1, 1, 5, -2], "degenerate"),
        ([1, 1, "a", 5], "non-numeric"),
        ([1, 1, None, 5], "non-numeric"),
        ([1, 1, float("nan"), 5], "non-numeric"),
        ([1, 1, 5], "4 numbers"),
        ([1, 1, 5, 5, 5], "4 numbers"),
        ("1 1 5 5", "4 numbers"),
    ],
)
def test_bad_box(coco_dir_factory, bbox, words):
    anns = [{"id": 9, "image_id": 2, "bbox": bbox, "category_id": 1}]
    msg = _error(coco_dir_factory(annotations=anns))
    assert "annotation 9 (image 2)" in msg and words in msg


@pytest.mark.parametrize(
    "bbox",
    [
        [-6.0, 2.0, 10.0, 10.0],  # 6 px left of a 10-px-wide box: > 2 px and > 10 %
        [5.0, 5.0, 10.0, 40.0],  # runs 15 px past the bottom of the 30-px image
        [31.0, 5.0, 1.0, 5.0],  # within 2 px but entirely right of the image: no area left
    ],
)
def test_box_far_outside_image(coco_dir_factory, bbox):
    anns = [{"id": 4, "image_id": 2, "bbox": bbox, "category_id": 1}]
    msg = _error(coco_dir_factory(annotations=anns))
    assert "annotation 4 (image 2)" in msg and "30x30" in msg


def test_valid_json_message_names_valid_json(coco_dir_factory):
    anns = [{"id": 17, "image_id": 1, "bbox": [1, 1, 5, 5], "category_id": 11}]
    json_path = coco_dir_factory(split="valid", annotations=anns)
    with pytest.raises(DataError, match=r"valid\.json: annotation 17 \(image 1\): category_id 11"):
        load_coco(json_path)


def test_split_paths(coco_dir_factory):
    json_path = coco_dir_factory()
    root = json_path.parent
    assert split_paths(root, "train") == (root / "train", json_path)
    (root / "test").mkdir()
    assert split_paths(root, "test") == (root / "test", None)
    with pytest.raises(DataError, match="valid"):
        split_paths(root, "valid")


# ---------------------------------------------------------------- dataset and collate


def test_dataset_labelled(coco_dir_factory):
    json_path = coco_dir_factory()
    ds = DigitDataset(json_path.parent / "train", json_path)
    assert len(ds) == 3 and ds.image_ids == [1, 2, 3] and ds.sizes[0] == (40, 20)
    image, target = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, 20, 40)
    expected = np.asarray(Image.open(ds.file_paths[0]).convert("RGB"), np.float32) / 255
    torch.testing.assert_close(image, torch.from_numpy(expected).permute(2, 0, 1))
    assert target["boxes"].dtype == torch.float32
    assert target["boxes"].tolist() == [[2, 3, 10, 15], [12, 3, 21, 15]]
    assert target["labels"].dtype == torch.int64 and target["labels"].tolist() == [2, 10]
    assert target["image_id"] == 1
    _, empty = ds[2]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)


def test_lookalikes_load_and_join_the_targets_only_when_asked(coco_dir_factory):
    looks = [{"image_id": 1, "bbox": [22.0, 3.0, 8.0, 12.0]}, {"image_id": 3, "bbox": [0.0, 0.0, 5.0, 24.0]}]
    json_path = coco_dir_factory(edit=lambda raw: raw.update(lookalikes=looks))
    coco = load_coco(json_path)
    np.testing.assert_array_equal(coco.lookalikes[1], [[22, 3, 30, 15]])
    assert 2 not in coco.lookalikes and coco.boxes[1].shape == (2, 4)  # digits untouched
    plain = DigitDataset(json_path.parent / "train", json_path)
    assert plain[0][1]["labels"].tolist() == [2, 10]
    ds = DigitDataset(json_path.parent / "train", json_path, lookalikes=True)
    _, target = ds[0]
    assert target["labels"].tolist() == [2, 10, 11]
    assert target["boxes"].tolist() == [[2, 3, 10, 15], [12, 3, 21, 15], [22, 3, 30, 15]]
    assert ds[1][1]["labels"].tolist() == [1]
    _, only = ds[2]  # an image with no digit but a lookalike
    assert only["labels"].tolist() == [11] and only["boxes"].tolist() == [[0, 0, 5, 24]]


@pytest.mark.parametrize("looks, words", [
    ({"image_id": 1}, "must be a list"),
    ([{"image_id": 9, "bbox": [0, 0, 4, 4]}], "lookalikes\\[0\\]: unknown image_id 9"),
    ([{"bbox": [0, 0, 4, 4]}], "lookalikes\\[0\\]: must be an object"),
    ([{"image_id": 1, "bbox": [0, 0, -4, 4]}], "lookalikes\\[0\\]"),
])
def test_bad_lookalikes_are_one_clear_error(coco_dir_factory, looks, words):
    json_path = coco_dir_factory(edit=lambda raw: raw.update(lookalikes=looks))
    with pytest.raises(DataError, match=words):
        load_coco(json_path)


def test_dataset_unlabelled_and_collate(coco_dir_factory):
    json_path = coco_dir_factory(split="test")
    json_path.unlink()
    ds = DigitDataset(json_path.parent / "test")
    assert ds.image_ids == [1, 2, 3] and ds.sizes == [(40, 20), (30, 30), (25, 25)]
    images, targets = collate_detection([ds[0], ds[1]])
    assert [im.shape for im in images] == [(3, 20, 40), (3, 30, 30)]  # not stacked: sizes differ
    assert [t["image_id"] for t in targets] == [1, 2]
    assert all(t["boxes"].shape == (0, 4) and t["labels"].shape == (0,) for t in targets)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate_detection)
    images, targets = next(iter(loader))
    assert len(images) == 3 and len(targets) == 3


# ---------------------------------------------------------------- check_dataset


def test_check_dataset_summary(coco_dir_factory):
    json_path = coco_dir_factory()
    coco_dir_factory(split="valid")
    test_json = coco_dir_factory(split="test")
    test_json.unlink()
    summary = check_dataset(json_path.parent)
    train = summary["splits"]["train"]
    assert train["images"] == 3 and train["boxes"] == 3 and train["clipped"] == 0
    assert train["digits_per_image"] == {0: 1, 1: 1, 2: 1}
    assert train["box_height"][50] == 12.0 and set(train["box_width"]) == {5, 25, 50, 75, 95}
    assert train["digit_counts"][0] == 1 and train["digit_counts"][9] == 1
    assert summary["splits"]["test"] == {**summary["splits"]["test"], "labelled": False, "images": 3}
    text = format_summary(summary)
    assert "train" in text and "valid" in text and "test" in text and "box height" in text


def test_check_dataset_needs_train_json(coco_dir_factory):
    json_path = coco_dir_factory()
    json_path.unlink()
    with pytest.raises(DataError, match=r"train\.json"):
        check_dataset(json_path.parent)


def test_check_dataset_reports_clipping(coco_dir_factory):
    anns = [{"id": 1, "image_id": 1, "bbox": [-1.0, 0.0, 10.0, 10.0], "category_id": 3}]
    summary = check_dataset(coco_dir_factory(annotations=anns).parent)
    assert summary["clipped"] == 1 and "clipped" in format_summary(summary)
