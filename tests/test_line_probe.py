"""benchmarks/line_probe.py: the "dispute" rule measured on cached readings of the pair (the likelihood it
uses is tested in test_line.py)."""

import importlib.util

import pytest

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
