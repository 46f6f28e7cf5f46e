"""`digitdet errors`: the classifier on hand-made numbers (every kind), the boxes a reading uses, and the
whole command on a tiny (untrained) checkpoint."""

import json

import numpy as np
import pytest
import torch

from digitdet.cli import main
from digitdet.config import load_config
from digitdet.model import build_model
from digitdet.model.checkpoint import save_checkpoint
from digitdet.studies.errors import KINDS, classify_error, count_kinds, find_errors, reading_boxes
from tiny import CPU, TINY, make_tiny_dataset


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: OpenMP spin-waits badly on a shared 2-core machine (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.mark.parametrize(
    "truth, pred, kind",
    [
        ("117", "117", None),
        ("-1", "-1", None),
        ("117", "17", "missed"),
        ("117", "-1", "missed"),  # nothing read: every digit missed
        ("42", "2", "missed"),
        ("117", "1117", "extra"),  # the report's duplicate
        ("-1", "5", "extra"),  # digits read where there are none
        ("17", "170", "extra"),
        ("12", "21", "wrong_order"),
        ("123", "312", "wrong_order"),
        ("117", "118", "wrong_digit"),
        ("117", "18", "wrong_digit"),  # shorter but not contained: a miss and a misread
        ("12", "345", "wrong_digit"),
        ("12", "1", "missed"),
    ],
)
def test_classify_error(truth, pred, kind):
    assert classify_error(truth, pred) == kind


def test_find_and_count_errors():
    truth = {3: "12", 1: "117", 2: "5", 4: "-1"}
    read = {1: "1117", 2: "5", 3: "21"}  # image 4 has no detections at all: '-1', right
    errors = find_errors(read, truth)
    assert [(e["image_id"], e["kind"]) for e in errors] == [(1, "extra"), (3, "wrong_order")]
    assert count_kinds(errors) == {"missed": 0, "extra": 1, "wrong_digit": 0, "wrong_order": 1}
    assert list(KINDS) == ["missed", "extra", "wrong_digit", "wrong_order"]


def test_reading_boxes_apply_threshold_and_duplicate_suppression():
    det = {"boxes": np.array([[0, 0, 10, 20], [1, 0, 10, 20], [12, 0, 20, 20], [30, 0, 40, 20]], np.float32),
           "scores": np.array([0.9, 0.8, 0.7, 0.1], np.float32), "labels": np.array([2, 8, 4, 5])}
    boxes, labels = reading_boxes(det, 0.5, 0.5)
    assert labels.tolist() == [2, 4] and boxes.shape == (2, 4)
    _, labels = reading_boxes(det, 0.5, 1.0)
    assert labels.tolist() == [2, 8, 4]
    # By presence, as numbers are read: an unsure glyph (0.45 + 0.4 at one place) is drawn too, and a
    # presence the pyramid measured is taken as it is.
    unsure = {"boxes": np.array([[0, 0, 10, 20], [1, 0, 10, 20]], np.float32),
              "scores": np.array([0.45, 0.4], np.float32), "labels": np.array([3, 9])}
    assert reading_boxes(unsure, 0.75, 0.5)[1].tolist() == [3]
    assert reading_boxes({**unsure, "presence": np.array([0.5, 0.0])}, 0.75, 0.5)[1].tolist() == []


def test_errors_command_writes_counts_and_galleries(tmp_path, capsys):
    data = make_tiny_dataset(tmp_path / "data")
    cfg = load_config([CPU], TINY)
    torch.manual_seed(0)
    ckpt = tmp_path / "run" / "best.pt"  # random weights in the trained format: the plumbing, quickly
    save_checkpoint(ckpt, {"config": cfg.to_dict(), "model": build_model(cfg).state_dict(), "read_thresh": 0.1})
    out = tmp_path / "errors"
    assert main(["-q", "errors", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(out)]) == 0
    assert "numbers read wrongly" in capsys.readouterr().out
    summary = json.loads((out / "errors.json").read_text())
    assert summary["images"] == 4 and set(summary["counts"]) == set(KINDS)
    assert sum(summary["counts"].values()) == summary["wrong"] == len(summary["errors"])
    for kind, count in summary["counts"].items():
        assert (out / f"errors_{kind}.png").is_file() == (count > 0)
    md = (out / "errors.md").read_text()
    for label in KINDS.values():
        assert f"| {label} |" in md
