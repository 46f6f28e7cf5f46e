"""benchmarks/line_probe.py: the "dispute" rule measured on cached readings of the pair (the likelihood it
uses is tested in test_line.py), a line read in several views, and the recorder its `cache` reads with."""

import importlib.util

import pytest

from test_dispute import pair_det
from test_line import lines
from tiny import ROOT

torch = pytest.importorskip("torch")
spec = importlib.util.spec_from_file_location("line_probe", ROOT / "benchmarks" / "line_probe.py")
line_probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(line_probe)


def test_the_dispute_rule_replaces_only_a_close_up_the_line_reads_much_likelier():
    logits = lines([0, 2, 0, 3, 0, 0], [0, 2, 0, 3, 0, 0], [0, 4, 0, 0, 0, 0])  # "12", "12", "3"
    items = [("a.png", "12"), ("b.png", "12"), ("c.png", "3")]
    got = line_probe.decode(logits)
    assert [g for g, _ in got] == ["12", "12", "3"]
    pair = {"a.png": {"up": "13", "route": "close"},  # wrong, a close-up: the line's 12 replaces it
            "b.png": {"up": "13", "route": "whole"},  # wrong, but read as a whole photo: kept
            "c.png": {"up": "3", "route": "close"}}  # right and agreed: kept
    assert line_probe.disputed(items, got, logits, pair, [1, 1e6]) == "dispute@1 2 (+1)  dispute@1e+06 1 (+0)"


def test_the_fill_rule_lowers_the_margin_only_where_the_digits_fill_the_photo():
    """--fill 0.6,1: the margin is 1 where the cached pair's digits are >= 0.6 of the photo's height, the
    given margin elsewhere. Mutations: the fill ignored; the digits compared with the photo's width."""
    logits = lines([0, 2, 0, 3, 0, 0], [0, 2, 0, 3, 0, 0])  # "12" twice, read beyond doubt
    items = [("a.png", "12"), ("b.png", "13")]  # the line right in a, the pair in b
    got = line_probe.decode(logits)
    box = [0, 0, 10, 10]
    pair = {"a.png": {"up": "13", "route": "close", "box": box, "digit_h": 60, "size": [200, 100]},  # fills
            "b.png": {"up": "13", "route": "close", "box": box, "digit_h": 50, "size": [80, 100]}}  # does not
    assert line_probe.disputed(items, got, logits, pair, [1e6]) == "dispute@1e+06 1 (+0)"
    assert line_probe.disputed(items, got, logits, pair, [1e6], (0.6, 1.0)) == "dispute@1e+06 2 (+1)"


def test_views_pick_the_number_likeliest_on_average_and_the_dispute_compares_averages():
    """The first view leans to "13" (its 3rd digit frame 2 : 3 nearly even), the second reads "12" for sure:
    read alone the first view says 13, both views together 12 (mean CTC log-likelihood), and the dispute
    against the pair's "13" is decided by the averaged gap. Mutation: the first view's reading kept."""
    soft = lines([0, 2, 0, 3, 0, 0])
    soft[0, 3, 3], soft[0, 3, 4] = 0.5, 1.0  # frame 3: digit 2 (class 3) nearly as likely as digit 3
    soft[0, 3, 0] = -20.0
    sure = lines([0, 2, 0, 3, 0, 0])
    assert [g for g, _ in line_probe.best_of_views([soft])[0]] == ["13"]
    got, views = line_probe.best_of_views([soft, sure])
    assert [g for g, _ in got] == ["12"] and len(views) == 2
    pair = {"a.png": {"up": "13", "route": "close"}}
    assert line_probe.disputed([("a.png", "12")], got, views, pair, [1, 30]) == "dispute@1 1 (+1)  dispute@30 0 (+0)"


def test_the_cache_recorder_keeps_the_pairs_detections_and_notes_only_a_line_it_would_read():
    """The recorder standing in for reading/dispute.dispute returns the very detections it gets, and notes a
    consultation for a number side by side but not for a stacked one (never disputed). Mutation: note
    every call; record the photo's size as (height, width)."""
    consulted = []
    keep = line_probe.recorder(consulted)
    row = pair_det([[60, 20, 85, 80], [90, 20, 115, 80]], "13")
    column = pair_det([[60, 10, 90, 45], [60, 50, 90, 85]], "12")
    image = torch.zeros(3, 100, 160)
    noted = [{"box": [60.0, 20.0, 115.0, 80.0], "digit_h": 60.0, "size": [160, 100]}]
    assert keep(None, image, row, 3.0, 0.5, 0.3) is row and consulted == noted
    assert keep(None, image, column, 3.0, 0.5, 0.3, 1.0) is column and consulted == noted


def test_the_agree_rule_lowers_the_margin_only_where_every_view_reads_the_same_number():
    """--agree 0: the margin is 0 on a line every view (each recogniser of an ensemble) reads greedily as the
    same number, the given margin elsewhere. Line a: both views read "12" (agreed); line b: the first reads
    "12", the second "13" less surely, so the views disagree. Mutations: agreement ignored; agreement
    judged on the first view only."""
    first = lines([0, 2, 0, 3, 0, 0], [0, 2, 0, 3, 0, 0])  # "12", "12"
    second = lines([0, 2, 0, 3, 0, 0], [0, 2, 0, 4, 0, 0])  # "12", "13"
    second[1, 3, 4], second[1, 3, 3] = 1.0, 0.8  # line b, frame 3: digit 3 barely ahead of digit 2
    items = [("a.png", "12"), ("b.png", "12")]
    got, views = line_probe.best_of_views([first, second])
    assert [g for g, _ in got] == ["12", "12"]
    pair = {"a.png": {"up": "13", "route": "close"}, "b.png": {"up": "13", "route": "close"}}
    assert line_probe.disputed(items, got, views, pair, [1e6]) == "dispute@1e+06 0 (+0)"
    assert line_probe.disputed(items, got, views, pair, [1e6], agree=0.0) == "dispute@1e+06 1 (+1)"
