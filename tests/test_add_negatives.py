"""scripts/add_negatives.py: number-free photos appended to a synth folder's training split as images with no
digit box (what a reader learns 'no number here' from)."""

import csv
import importlib.util
import json

import pytest

from conftest import write_png
from digitdet.data.coco import load_coco
from tiny import ROOT

spec = importlib.util.spec_from_file_location("add_negatives", ROOT / "scripts" / "add_negatives.py")
add_negatives = importlib.util.module_from_spec(spec)
spec.loader.exec_module(add_negatives)


def number_free_set(folder, sizes, truths=None):
    """A set as benchmarks/blank_crops.py writes it: images/N.png + numbers.csv (truth -1 unless given)."""
    truths = truths or ["-1"] * len(sizes)
    for i, (w, h) in enumerate(sizes, 1):
        write_png(folder / "images" / f"{i}.png", w, h, seed=i)
    with (folder / "numbers.csv").open("w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["image_id", "true_number", "source_file"])
        rows.writerows([i, t, "x"] for i, t in enumerate(truths, 1))
    return folder


def test_negatives_are_listed_without_boxes_and_their_files_copied(coco_dir_factory, tmp_path):
    data = coco_dir_factory("train").parent
    before = load_coco(data / "train.json")
    blank = number_free_set(tmp_path / "blank", [(40, 30), (25, 60)])
    assert add_negatives.main([str(data), str(blank)]) == 0
    after = load_coco(data / "train.json")  # checks every listed file exists at its stated size
    assert len(after.images) == len(before.images) + 2
    new = after.images[-2:]
    assert [(im["file_name"], im["width"], im["height"]) for im in new] == [
        ("neg-blank-1.png", 40, 30), ("neg-blank-2.png", 25, 60)]
    assert len({im["id"] for im in after.images}) == len(after.images)
    for im in new:
        assert after.boxes[im["id"]].shape == (0, 4) and after.labels[im["id"]].shape == (0,)
    for im in before.images:  # the digits already there are untouched
        assert (after.boxes[im["id"]] == before.boxes[im["id"]]).all()


@pytest.mark.parametrize("case", ["a number", "twice"])
def test_a_set_showing_a_number_or_added_twice_is_refused_and_train_json_kept(coco_dir_factory, tmp_path, capsys,
                                                                           case):
    data = coco_dir_factory("train").parent
    good = number_free_set(tmp_path / "good", [(40, 30), (25, 60)])
    blank = number_free_set(tmp_path / "blank", [(40, 30), (25, 60)], ["-1", "17"] if case == "a number" else None)
    if case == "twice":
        assert add_negatives.main([str(data), str(blank)]) == 0
    kept = (data / "train.json").read_text()
    assert add_negatives.main([str(data), str(good), str(blank)]) == 1  # the good set first: nothing of it kept
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("shows 17" in err[0] if case == "a number" else "already lists" in err[0])
    assert (data / "train.json").read_text() == kept
    names = [im["file_name"] for im in json.loads(kept)["images"]]
    assert sum(n.startswith("neg-") for n in names) == (0 if case == "a number" else 2)
    assert sorted(p.name for p in (data / "train").iterdir()) == sorted(names)  # no file copied for nothing
