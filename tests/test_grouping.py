"""Grouping digit detections into candidate numbers, with hand-built detections."""

import pytest

from digitdet.reading import numbers
from digitdet.reading.grouping import Digit, GroupingRules, group_digits


def row(x0, y0, h, digits, score=0.9, gap=0.1):
    """Digits of height h side by side from (x0, y0), width 0.55 h, gap `gap` heights."""
    w = 0.55 * h
    out = []
    for k, d in enumerate(digits):
        x = x0 + k * (w + gap * h)
        out.append(Digit((x, y0, x + w, y0 + h), int(d), score))
    return out


def test_a_line_reads_left_to_right_whatever_the_input_order():
    digits = row(100, 50, 40, "303")
    got = group_digits(list(reversed(digits)))
    assert [c.number for c in got] == ["303"]
    assert got[0].box == pytest.approx((100, 50, 100 + 3 * 22 + 2 * 4, 90))
    assert got[0].confidence == pytest.approx(0.9)


def test_small_print_and_a_stray_texture_digit_do_not_join_the_number():
    number = row(100, 50, 40, "303", score=0.8)
    small_print = row(100, 100, 10, "12", score=0.95)  # just under the number, a quarter of its height
    stray = [Digit((400, 300, 415, 330), 1, 0.97)]  # a mortar line far away
    got = group_digits(number + small_print + stray)
    assert got[0].number == "303"
    assert sorted(c.number for c in got) == ["1", "12", "303"]


def test_the_larger_number_wins_over_more_confident_small_print():
    big, small = row(0, 0, 80, "42", score=0.7), row(0, 200, 20, "7", score=0.99)
    got = group_digits(small + big)
    # ranks: 0.7 * 2 ** 0.5 (two digits) against 0.99 * (20 / 80) ** 0.5 (one digit, a quarter as tall),
    # halved as small print (under half the tallest candidate's height)
    assert [c.number for c in got] == ["42", "7"]
    assert got[0].rank == pytest.approx(0.7 * 2 ** 0.5) and got[1].rank == pytest.approx(0.99 * 0.5 * 0.5)


@pytest.mark.parametrize("list_height,first", [(22, "4"), (26, "201202203")])
def test_a_lone_big_number_beats_a_list_of_room_numbers_in_small_print(list_height, first):
    # A sign: "4" on its plate, 48 px tall, and a line "201, 202, 203" under it (commas are no digits:
    # the gaps of 0.7 heights still link, one nine-digit candidate). Under half the 4's height the list is
    # small print and ranks at half (0.95 * 2 * (22 / 48) ** 0.5 / 2 = 0.64 < 0.9); at 26 px it is not and
    # its evidence (4 digits and more) wins (0.95 * 2 * (26 / 48) ** 0.5 = 1.40).
    big = [Digit((100, 20, 126, 68), 4, 0.9)]
    rooms = [d for k, part in enumerate(("201", "202", "203"))
             for d in row(60 + k * (3 * 0.65 + 0.6) * list_height, 100, list_height, part, score=0.95)]
    got = group_digits(rooms + big)
    assert sorted(c.number for c in got) == ["201202203", "4"]
    assert got[0].number == first


def test_a_lone_confident_digit_does_not_beat_a_number():
    number, lone = row(0, 0, 40, "210", score=0.75), [Digit((300, 0, 322, 40), 1, 0.97)]
    assert [c.number for c in group_digits(lone + number)] == ["210", "1"]


def test_a_stacked_column_reads_top_to_bottom():
    col = [Digit((10, 10 + k * 45, 32, 50 + k * 45), d, 0.9) for k, d in enumerate([1, 2, 3])]
    got = group_digits([col[2], col[0], col[1]])
    assert len(got) == 1 and got[0].number == "123" and got[0].vertical


def test_two_lines_are_two_candidates_not_one_number():
    top, bottom = row(0, 0, 40, "12"), row(0, 48, 40, "34", score=0.8)
    got = group_digits(top + bottom)
    assert [c.number for c in got] == ["12", "34"]


def test_a_digit_below_a_line_does_not_turn_it_into_a_column():
    line = row(100, 50, 40, "302")
    below = Digit((line[2].box[0] + 5, 100, line[2].box[2] + 5, 140), 1, 0.99)  # a mortar "1" under the 2
    got = group_digits(line + [below])
    assert got[0].number == "302"


def test_wide_gaps_split_numbers_and_the_rules_are_settings():
    digits = row(0, 0, 40, "12", gap=1.5)
    assert sorted(c.number for c in group_digits(digits)) == ["1", "2"]
    assert [c.number for c in group_digits(digits, GroupingRules(max_gap=2.0))] == ["12"]


def test_heights_too_different_do_not_link():
    a = Digit((0, 0, 22, 40), 1, 0.9)
    b = Digit((24, 0, 60, 70), 2, 0.9)  # 1.75x taller, beside it
    assert sorted(c.number for c in group_digits([a, b])) == ["1", "2"]


def test_nothing_in_nothing_out():
    assert group_digits([]) == []
    assert numbers.read_number([], [], [], 0.5, 0.3) == numbers.NO_NUMBER


def test_read_number_thresholds_dedups_and_drops_the_stray_digit():
    boxes = [[100, 50, 122, 90], [126, 50, 148, 90], [101, 51, 121, 89], [400, 300, 415, 330], [150, 50, 172, 90]]
    scores = [0.9, 0.9, 0.6, 0.95, 0.2]  # a duplicate "7" on the first digit, a stray "1", a weak third digit
    labels = [2, 4, 8, 2, 6]  # digits 1, 3, 7, 1, 5
    assert numbers.read_number(boxes, scores, labels, score_thresh=0.5, dedup_iou=0.3) == "13"
    assert numbers.read_number(boxes, scores, labels, score_thresh=0.1, dedup_iou=0.3) == "135"


def test_ground_truth_keeps_every_box():
    boxes = [[100, 50, 122, 90], [400, 300, 415, 330]]
    assert numbers.ground_truth_number(boxes, [3, 5]) == "24"


def test_a_leaning_stack_links_and_reads_as_one_column_top_to_bottom():
    # A "1" (narrow) 0.35 h right of the "2" under it: close enough to link as a stack (centres within
    # 0.45 h sideways), and by the same rule a column, so it reads "12", not left to right "21".
    two = Digit((10, 50, 32, 90), 2, 0.9)
    one = Digit((29, 0, 41, 40), 1, 0.9)
    got = group_digits([two, one])
    assert [(c.number, c.vertical) for c in got] == [("12", True)]
    assert numbers.is_vertical(numbers._as_tensor([two.box, one.box], numbers.torch.float32))


def test_boxes_overlapping_more_than_half_their_height_are_no_column():
    # Not a stack: the lower box starts above the upper one's centre. Nor on a level line (centres 0.475 h
    # apart vertically, over line_tol); boxes that overlap sideways link as touching neighbours (touch_tol,
    # a turned number), read left to right. Either way no two-digit column.
    a, b = Digit((0, 0, 10, 20), 4, 0.9), Digit((2, 9.5, 12, 29.5), 7, 0.9)
    assert [(c.number, c.vertical) for c in group_digits([a, b])] == [("47", False)]
    assert sorted(c.number for c in group_digits([a, b], GroupingRules(touch_tol=0.0))) == ["4", "7"]


def test_a_lower_smaller_digit_beside_a_taller_one_is_a_line_not_a_column():
    # The "1" starts at the "2"'s centre (as a column's next digit would) but sits beside it, 0.63 of the
    # mean height away sideways: on one line, read left to right.
    one, two = Digit((0, 10, 7, 25), 1, 0.9), Digit((9, 0, 20, 20), 2, 0.9)
    got = group_digits([two, one])
    assert [(c.number, c.vertical) for c in got] == [("12", False)]
    # Ground truth reads by the same rule: a staircase going down-left is not a column.
    assert numbers.ground_truth_number([[40, 0, 50, 20], [20, 15, 30, 35], [0, 30, 10, 50]], [2, 3, 4]) == "321"


def test_alike_heights_rank_a_number_above_one_of_mixed_heights():
    # Same digit count, confidence and median height: the number whose digits are alike in height comes
    # first, though the mixed one (a "digit" that is a shadow, a "1" that is a pole...) is further left.
    def at(x0, heights, digits):
        out, x = [], x0
        for h, d in zip(heights, digits):
            out.append(Digit((x, 100 - h, x + 0.55 * h, 100), d, 0.9))
            x += 0.65 * h
        return out

    mixed, alike = at(0, [14, 20, 22], [5, 6, 7]), at(200, [20, 20, 20], [1, 2, 3])
    got = group_digits(mixed + alike)
    assert [c.number for c in got] == ["123", "567"]
    assert got[0].rank > got[1].rank


def test_a_lowercase_letter_after_the_number_does_not_join_it_but_a_receding_digit_does():
    # "3a": the detector takes the "a" (x-height, 0.65 of the digit's, on the same baseline) for an "8".
    # Digits of one number differ less: a number seen at a slant shrinks by at most ~1.3x from digit to
    # digit.
    three, a = Digit((0, 0, 12, 20), 3, 0.95), Digit((14, 7, 24, 20), 8, 0.9)
    got = group_digits([three, a])
    assert [c.number for c in got] == ["3", "8"]
    one, two = Digit((0, 0, 12, 20), 1, 0.95), Digit((14, 2, 24, 17.5), 2, 0.9)  # 20 px, then 15.5 px
    assert [c.number for c in group_digits([one, two])] == ["12"]


def test_a_leaning_number_is_one_line():
    # A "29" on a plate turned ~35 degrees (a synthetic cut photo, val21 107.png): the centres are 0.49 of
    # the mean height apart vertically, over line_tol, but 0.66 of their horizontal offset, a lean.
    two, nine = Digit((9, 4, 35, 45), 2, 1.0), Digit((36, 27, 61, 57), 9, 0.99)
    assert [c.number for c in group_digits([nine, two])] == ["29"]
    assert sorted(c.number for c in group_digits([nine, two], GroupingRules(slant=0.0))) == ["2", "9"]


def test_two_lines_of_text_do_not_become_a_leaning_one():
    # The bottom digit sits a whole height lower, diagonally: the slope (40 px over 62) is under the lean
    # allowed, but boxes a height apart do not overlap (slant_tol): two lines, not one number.
    top, below = row(0, 0, 40, "12"), [Digit((88, 40, 110, 80), 7, 0.9)]
    assert sorted(c.number for c in group_digits(top + below)) == ["12", "7"]
    assert [c.number for c in group_digits(top + below, GroupingRules(slant_tol=1.1))] == ["127"]


def test_a_number_turned_past_the_lean_is_one_line_where_its_boxes_touch():
    # "123" on a plate turned ~35 degrees clockwise (as real_crops.py's turn-cw crops): the narrow "1" puts the
    # centres of "1" and "2" 1.2 times their horizontal offset apart vertically, past `slant`, but their boxes
    # overlap sideways and their centres are 0.56 heights apart: neighbours on one line.
    one, two, three = Digit((10, 0, 30, 40), 1, 1.0), Digit((24, 22, 54, 64), 2, 1.0), Digit((50, 40, 80, 82), 3, 1.0)
    assert [c.number for c in group_digits([three, one, two])] == ["123"]
    assert sorted(c.number for c in group_digits([three, one, two], GroupingRules(touch_tol=0.0))) == ["1", "23"]
    # Boxes overlapping sideways a whole height apart vertically are two lines, not one leaning number.
    low = Digit((24, 44, 54, 86), 2, 1.0)
    assert sorted(c.number for c in group_digits([one, low, Digit((60, 44, 90, 86), 5, 1.0)])) == ["1", "25"]
