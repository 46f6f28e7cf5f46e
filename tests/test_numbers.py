import numpy as np
import torch

from digitdet.reading.numbers import (
    ground_truth_number,
    is_vertical,
    number_accuracy,
    read_number,
    tune_read_threshold,
)


def lab(*digits):
    return [d + 1 for d in digits]  # category ids 1..10 = digits 0..9


def test_reads_left_to_right_by_centre():
    boxes = [[40, 0, 50, 20], [0, 0, 10, 20], [20, 0, 30, 20]]
    assert read_number(boxes, [0.9, 0.9, 0.9], lab(7, 1, 1), 0.5, 0.5) == "117"


def test_duplicate_of_another_class_on_one_glyph_is_suppressed():
    # "117 -> 1117": a '1' and a '7' proposed on the same glyph; only the stronger survives.
    boxes = [[0, 0, 10, 20], [20, 0, 30, 20], [40, 0, 50, 20], [41, 0, 51, 20]]
    scores = [0.9, 0.9, 0.95, 0.7]
    assert read_number(boxes, scores, lab(1, 1, 7, 1), 0.5, 0.5) == "117"
    # Without class-agnostic suppression (iou 1.0 keeps everything) the duplicate is read.
    assert read_number(boxes, scores, lab(1, 1, 7, 1), 0.5, 1.0) == "1171"


def test_threshold_and_empty():
    boxes = [[0, 0, 10, 20], [20, 0, 30, 20]]
    assert read_number(boxes, [0.9, 0.3], lab(4, 2), 0.5, 0.5) == "4"
    assert read_number(boxes, [0.2, 0.3], lab(4, 2), 0.5, 0.5) == "-1"
    assert read_number(np.zeros((0, 4)), [], [], 0.5, 0.5) == "-1"


def test_vertical_stack_reads_top_to_bottom():
    boxes = [[0, 50, 10, 70], [1, 0, 11, 20], [0, 25, 10, 45]]
    assert is_vertical(torch.tensor(boxes, dtype=torch.float32))
    assert read_number(boxes, [0.9] * 3, lab(3, 1, 2), 0.5, 0.5) == "123"


def test_slanted_row_is_not_vertical():
    # A rotated number: each digit a little lower, but side by side.
    boxes = [[0, 0, 10, 20], [11, 6, 21, 26], [22, 12, 32, 32]]
    assert not is_vertical(torch.tensor(boxes, dtype=torch.float32))
    assert read_number(boxes, [0.9] * 3, lab(5, 6, 7), 0.5, 0.5) == "567"


def test_ground_truth_number_and_accuracy():
    assert ground_truth_number([[30, 0, 40, 20], [0, 0, 10, 20]], lab(0, 2)) == "20"
    assert ground_truth_number(np.zeros((0, 4)), []) == "-1"
    assert number_accuracy({1: "12", 2: "-1", 3: "5"}, {1: "12", 2: "7", 3: "5"}) == 2 / 3


def test_tune_read_threshold_picks_the_best():
    dets = [
        {"image_id": 1, "boxes": np.array([[0, 0, 10, 20], [20, 0, 30, 20]]), "scores": np.array([0.9, 0.4]),
         "labels": np.array(lab(1, 8))},
        {"image_id": 2, "boxes": np.array([[0, 0, 10, 20]]), "scores": np.array([0.35]),
         "labels": np.array(lab(3))},
    ]
    thresh, acc = tune_read_threshold(dets, {1: "1", 2: "3"}, 0.5, candidates=[0.1, 0.3, 0.5, 0.7])
    # 0.3 reads "18" and "3" (1 right); 0.5 reads "1" and "-1" (1 right); nothing gets both.
    assert acc == 0.5 and thresh == 0.1
    thresh, acc = tune_read_threshold(dets, {1: "1", 2: "-1"}, 0.5, candidates=[0.1, 0.3, 0.5, 0.7])
    assert (thresh, acc) == (0.5, 1.0)


def test_an_unsure_glyph_counts_as_one_digit_of_its_likeliest_class():
    # A sure "1", then a glyph the model splits between 0, 8 and 9 (scores from a demo model's "10"):
    # none alone passes 0.75, together they are surely a digit, read as the likeliest.
    boxes = [[39, 12, 68, 58], [72, 11, 100, 53], [73, 15, 97, 49], [75, 12, 99, 52]]
    assert read_number(boxes, [0.93, 0.63, 0.56, 0.42], lab(1, 0, 8, 9), 0.75, 0.3) == "10"
    # Spread thinly (a letter or a texture) the presence stays under the threshold.
    assert read_number(boxes, [0.93, 0.3, 0.2, 0.1], lab(1, 0, 8, 9), 0.75, 0.3) == "1"
    # A neighbouring digit (IoU < SAME_PLACE_IOU) is never added to its neighbour's presence.
    side = [[0, 0, 10, 20], [8, 0, 18, 20]]  # IoU 0.11
    assert read_number(side, [0.9, 0.5], lab(4, 2), 0.75, 0.3) == "4"
    # Another digit of the same class is a second digit, not the same glyph's alternative.
    assert read_number([[0, 0, 10, 20], [2, 0, 12, 20]], [0.6, 0.5], lab(1, 1), 0.75, 0.3) == "-1"


def test_a_suppressed_box_adds_to_one_digits_presence_only():
    # Two kept glyphs that overlap (IoU 0.6 < dedup 0.7) and an other-class box suppressed under both
    # (IoU 0.82 and 0.74): it adds its 0.5 to the stronger glyph's presence (0.6 -> 1.0) and is then
    # spent, so the weaker one stays at 0.55, under 0.75. Counted twice, "0" would become "01".
    boxes = [[0, 0, 10, 20], [2.5, 0, 12.5, 20], [1, 0, 11, 20]]
    assert read_number(boxes, [0.6, 0.55, 0.5], lab(0, 1, 2), 0.75, 0.7) == "0"


def test_a_presence_the_detector_measured_is_taken_as_it_is():
    # reading.pyramid measures presence per view before merging levels and passes it on: reading then
    # neither sums it again nor falls back to the score (which would undo the per-view rule).
    boxes = [[0, 0, 10, 20], [1, 0, 11, 20]]
    assert read_number(boxes, [0.45, 0.4], lab(2, 8), 0.75, 0.5) == "2"  # summed here: 0.85
    assert read_number(boxes, [0.45, 0.4], lab(2, 8), 0.75, 0.5, presence=[0.45, 0.0]) == "-1"
    assert read_number(boxes, [0.45, 0.4], lab(2, 8), 0.75, 0.5, presence=[0.9, 0.0]) == "2"
