import numpy as np
import pytest

from digitdet.metrics import STAT_NAMES, coco_results, coco_stats, format_stats, stats_dict


def gt_json():
    return {
        "images": [{"id": 1, "file_name": "1.png", "width": 100, "height": 50},
                   {"id": 2, "file_name": "2.png", "width": 100, "height": 50}],
        "annotations": [
            {"id": 1, "image_id": 1, "bbox": [10, 10, 20, 30], "category_id": 2, "area": 600, "iscrowd": 0},
            {"id": 2, "image_id": 1, "bbox": [40, 10, 20, 30], "category_id": 5, "area": 600, "iscrowd": 0},
            {"id": 3, "image_id": 2, "bbox": [5, 5, 30, 40], "category_id": 10, "area": 1200, "iscrowd": 0},
        ],
        "categories": [{"id": i, "name": str(i - 1)} for i in range(1, 11)],
    }


def test_perfect_detections_score_one():
    dets = [
        {"image_id": 1, "boxes": np.array([[10, 10, 30, 40], [40, 10, 60, 40]]), "scores": np.array([0.9, 0.8]),
         "labels": np.array([2, 5])},
        {"image_id": 2, "boxes": np.array([[5, 5, 35, 45]]), "scores": np.array([0.7]), "labels": np.array([10])},
    ]
    results = coco_results(dets)
    assert results[0]["bbox"] == [10.0, 10.0, 20.0, 30.0]  # xyxy -> xywh
    stats = coco_stats(gt_json(), results)
    assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0)


def test_wrong_class_and_missing_detections_lower_the_score():
    dets = [{"image_id": 1, "boxes": np.array([[10, 10, 30, 40]]), "scores": np.array([0.9]),
             "labels": np.array([3])}]
    stats = coco_stats(gt_json(), coco_results(dets))
    assert stats[0] == pytest.approx(0.0)
    assert coco_stats(gt_json(), []) == [0.0] * 12


def test_threshold_and_layout():
    dets = [{"image_id": 1, "boxes": np.array([[10, 10, 30, 40]]), "scores": np.array([0.04]),
             "labels": np.array([2])}]
    assert coco_results(dets, score_thresh=0.05) == []
    text = format_stats([0.5] * 12)
    assert text.count("\n") == 11 and "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all" in text
    assert list(stats_dict([0.1] * 12)) == STAT_NAMES
