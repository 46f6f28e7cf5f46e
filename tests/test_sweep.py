"""`digitdet sweep`: parsing, the per-image counts on hand-made readings, the "117 -> 1117" duplicate effect on
hand-made detections, and a whole sweep from a tiny (untrained) checkpoint."""

import csv
import io
import json

import numpy as np
import pytest
import torch

from digitdet.cli import main
from digitdet.config import load_config
from digitdet.errors import DigitdetError
from digitdet.model import build_model
from digitdet.model.checkpoint import save_checkpoint
from digitdet.studies.errors import open_split
from digitdet.studies.sweep import evaluate_setting, filter_score, parse_sweep, reading_counts, run_sweep
from tiny import CPU, TINY, make_tiny_dataset


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: OpenMP spin-waits badly on a shared 2-core machine (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def test_parse_sweep():
    assert parse_sweep(["nms=0.3,0.5,0.7", "score=0.05", "nms=0.5,0.9"]) == {
        "nms": [0.3, 0.5, 0.7, 0.9], "score": [0.05]}
    for bad in ("nms", "iou=0.3", "nms=a,b", "nms=1.5", "read="):
        with pytest.raises(DigitdetError, match="sweep"):
            parse_sweep([bad])


def test_reading_counts_add_up():
    truth = {1: "117", 2: "5", 3: "-1", 4: "42", 5: "12"}
    ref = {1: "117", 2: "5", 3: "-1", 4: "47", 5: "12"}
    read = {1: "1117", 2: "-1", 3: "-1", 4: "42", 5: "21"}
    c = reading_counts(read, truth, ref)
    assert c == {"images": 5, "correct": 2, "extra": 1, "missing": 1, "misread": 1, "gained": 1, "lost": 1,
                 "changed": 4, "fixed": 1, "broken": 3}
    assert c["correct"] + c["extra"] + c["missing"] + c["misread"] == c["images"]
    assert all(type(v) is int for v in c.values())


def _det(image_id, boxes, scores, labels):
    return {"image_id": image_id, "boxes": np.array(boxes, dtype=np.float32).reshape(-1, 4),
            "scores": np.array(scores, dtype=np.float32), "labels": np.array(labels, dtype=np.int64)}


def test_duplicate_suppression_effect_on_hand_made_detections(coco_dir_factory):
    json_path = coco_dir_factory("valid")  # image 1 shows "19" (x 2..10 and 12..21), image 2 "0", image 3 none
    split = open_split(json_path.parent, "valid", load_config([CPU]))
    dets = [
        # the "1", a second box of another class on the same glyph (a "7"), and the "9"
        _det(1, [[2, 3, 10, 15], [2.5, 3, 10, 15], [12, 3, 21, 15]], [0.9, 0.8, 0.9], [2, 8, 10]),
        _det(2, [[5, 5, 15, 25]], [0.9], [1]),
        _det(3, [], [], []),
    ]
    setting = {"nms": 0.5, "score": 0.05, "read": 0.5, "dedup": 0.5}
    row, read, no_dedup = evaluate_setting(dets, split, setting, None)
    assert read == {1: "19", 2: "0", 3: "-1"} and no_dedup[1] == "179"
    assert row["number_accuracy"] == 1.0 and row["accuracy_no_dedup"] == pytest.approx(2 / 3)
    assert row["extra"] == 0 and row["extra_no_dedup"] == 1 and row["correct"] == 3
    high = filter_score(dets, 0.85)
    assert [len(d["scores"]) for d in high] == [2, 1, 0]


def _untrained_checkpoint(path, read_thresh=0.1):
    """A checkpoint in the trained format with random weights: exercises the plumbing in a second."""
    cfg = load_config([CPU], TINY)
    torch.manual_seed(0)
    model = build_model(cfg)
    save_checkpoint(path, {"config": cfg.to_dict(), "model": model.state_dict(), "read_thresh": read_thresh})
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    return make_tiny_dataset(root / "data"), _untrained_checkpoint(root / "run" / "best.pt")


def test_sweep_writes_one_row_per_value(tiny):
    data, ckpt = tiny
    result = run_sweep(ckpt, data, ["nms=0.5,0.7", "score=0.05,0.5", "read=0.3", "dedup=1.0"], progress=False)
    out = ckpt.parent / "sweep"
    for name in ("sweep.md", "sweep.csv", "sweep.json"):
        assert (out / name).is_file(), name
    rows = result["rows"]
    assert [r["setting"] for r in rows][1:] == ["nms=0.5", "nms=0.7", "score=0.05", "score=0.5", "read=0.3",
                                                "dedup=1"]
    assert rows[0]["setting"].startswith("checkpoint (nms 0.3, score 0.05, read 0.1, dedup 0.3)")
    for r in rows:
        counts = [r[k] for k in ("correct", "extra", "missing", "misread", "gained", "lost", "changed")]
        assert all(type(v) is int and v >= 0 for v in counts)
        assert r["correct"] + r["extra"] + r["missing"] + r["misread"] == r["images"] == 4
        assert r["gained"] + r["lost"] <= r["changed"]
        if r["examples"]:
            assert (out / r["examples"]).is_file()
    assert rows[3]["changed"] == 0 and rows[3]["AP"] == rows[0]["AP"]  # score 0.05 = the checkpoint's own
    table = list(csv.DictReader(io.StringIO((out / "sweep.csv").read_text())))
    assert len(table) == len(rows) and table[1]["setting"] == "nms=0.5"
    assert json.loads((out / "sweep.json").read_text())["reference"]["nms"] == 0.3
    assert "| nms=0.7 |" in (out / "sweep.md").read_text()


def test_sweep_command(tiny, tmp_path, capsys):
    data, ckpt = tiny
    assert main(["-q", "sweep", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(tmp_path),
                 "--limit", "2", "nms=0.4", "predict.read_thresh=0.2"]) == 0
    assert "nms=0.4" in capsys.readouterr().out
    result = json.loads((tmp_path / "sweep.json").read_text())
    assert result["images"] == 2 and result["reference"]["read"] == 0.2
    assert main(["-q", "sweep", "--checkpoint", str(ckpt), "--data", str(data), "iou=0.3"]) == 2
    assert "iou=0.3" in capsys.readouterr().err
