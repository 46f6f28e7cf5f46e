"""scripts/tune_read.py: a model's number accuracy at its stored and its tuned reading threshold, through the
config's scan or, with --single-scale, the model's own scale only."""

import importlib.util

import pytest

from tiny import ROOT

spec = importlib.util.spec_from_file_location("tune_read", ROOT / "scripts" / "tune_read.py")
tune_read = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tune_read)


@pytest.mark.parametrize("flags, scan", [([], "cascade"), (["--single-scale"], "single")])
def test_tunes_the_bundled_reader_on_a_split_through_the_scan_asked(coco_dir_factory, capsys, flags, scan):
    data = coco_dir_factory("valid").parent
    assert tune_read.main(["--data", str(data), "--splits", "valid", *flags]) == 0
    out = capsys.readouterr().out
    assert f"scan {scan}" in out.splitlines()[0]
    row = next(line for line in out.splitlines() if line.startswith("| valid |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "3" and 0.0 <= float(cells[3]) <= 1.0 and 0.0 < float(cells[4]) < 1.0
