"""`digitdet ablate`: the table builder on hand-made rows, the shipped deltas, and one tiny ablation
(a trained baseline + an evaluation-only variant) that is skipped, resumed and forced."""

import csv
import io
import json

import pytest

from digitdet.cli import main
from digitdet.config import Config
from digitdet.errors import DigitdetError
from digitdet.studies import ablate as experiments
from digitdet.studies import results
from digitdet.studies.ablate import make_variants, run_ablation
from digitdet.studies.results import COLUMNS, Column, csv_table, markdown_table
from tiny import CPU, ROOT, TINY, make_tiny_dataset, yaml_settings

FAST = [*TINY, "train.threads=1"]  # one thread: OpenMP spin-waits badly on a shared 2-core machine
ABLATIONS = sorted((ROOT / "configs" / "ablations").glob("*.yaml"))


def _rows():
    a = {"variant": "a", "AP": 0.5, "AP50": 0.9, "APl": -1.0, "number_accuracy": 0.8, "train_minutes": 3.0,
         "infer_images_per_s": 10.0, "epochs": 4, "changes": "model.x=1"}
    b = {"variant": "b", "AP": 0.7, "AP50": 0.9, "APl": None, "number_accuracy": 0.6, "train_minutes": 2.0,
         "infer_images_per_s": 12.04, "epochs": 3, "changes": "a|b"}
    return [a, b]


def test_table_marks_the_best_value_of_each_column():
    md = markdown_table(_rows(), COLUMNS).splitlines()
    assert md[0].startswith("| variant | AP | AP50 | AP75 |") and len(md) == 4
    cells_a = [c.strip() for c in md[2].strip("|").split("|")]
    cells_b = [c.strip() for c in md[3].replace("\\|", "/").strip("|").split("|")]
    col = {c.key: k for k, c in enumerate(COLUMNS)}
    assert cells_b[col["AP"]] == "**0.700**" and cells_a[col["AP"]] == "0.500"  # highest AP
    assert cells_a[col["number_accuracy"]] == "**0.800**"
    assert cells_b[col["train_minutes"]] == "**2.0**" and cells_a[col["train_minutes"]] == "3.0"  # fewest
    assert cells_b[col["infer_images_per_s"]] == "**12.0**"
    assert cells_a[col["AP50"]] == cells_b[col["AP50"]] == "0.900"  # a tie of every row marks nothing
    assert cells_a[col["APl"]] == cells_b[col["APl"]] == "n/a"  # COCO's -1 and missing values
    assert cells_a[col["epochs"]] == "4" and cells_a[col["changes"]] == "model.x=1"  # never marked
    assert len(cells_a) == len(COLUMNS)


def test_table_with_one_row_marks_nothing_and_csv_has_every_column():
    assert "**" not in markdown_table(_rows()[:1], COLUMNS)
    table = list(csv.reader(io.StringIO(csv_table(_rows(), COLUMNS))))
    assert table[0] == [c.key for c in COLUMNS]
    assert [r[0] for r in table[1:]] == ["a", "b"]
    assert table[1][table[0].index("APl")] == "" and table[1][table[0].index("AP")] == "0.5"
    assert table[2][table[0].index("changes")] == "a|b"


def test_min_column_and_ties():
    rows = [{"x": 1.0}, {"x": 1.0}, {"x": 2.0}]
    assert results.best_cells(rows, Column("x", "x", best="min")) == {0, 1}
    assert results.best_cells(rows, Column("x", "x")) == {2}


def _expected_changes(delta):
    """'section.key=value; ...' for the keys `delta` sets to something else than cpu.yaml (over the
    dataclass defaults), in the config's section and field order."""
    defaults = Config().to_dict()
    base, own = yaml_settings(CPU), yaml_settings(delta)
    parts = []
    for section, fields in defaults.items():
        for key in fields:
            if key in own.get(section, {}):
                value = own[section][key]
                if base.get(section, {}).get(key, fields[key]) != value:
                    parts.append(f"{section}.{key}={json.dumps(value, separators=(',', ':'))}")
    return "; ".join(parts)


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.stem)
def test_shipped_deltas_are_small_and_load_over_the_cpu_base(path):
    lines = path.read_text().splitlines()
    assert 3 <= len(lines) <= 10
    (variant,) = make_variants([CPU], [path], [])[1:]
    expected = _expected_changes(path)
    assert expected, f"{path.name} changes nothing over cpu.yaml"
    assert variant.name == path.stem and variant.changes == expected
    assert variant.eval_only == path.stem.startswith(("nms", "dedup"))
    if path.stem.startswith("scale"):
        assert variant.cfg.model.min_size is None and variant.cfg.data.upsample in (2.0, 4.0)


def test_a_delta_that_changes_nothing_reuses_the_baseline_weights(tmp_path):
    same, model = tmp_path / "same.yaml", tmp_path / "model.yaml"
    same.write_text("predict:\n  nms_thresh: 0.3\n")  # cpu.yaml's own value
    model.write_text("model:\n  fpn_channels: 64\n")
    base, v_same, v_model = make_variants([CPU], [same, model], [])
    assert (base.eval_only, v_same.eval_only, v_model.eval_only) == (False, True, False)
    assert v_same.changes == "(none: same as the base)" and v_model.changes == "model.fpn_channels=64"


def test_variant_names_must_be_unique(tmp_path):
    for name in ("baseline.yaml", "a/x.yaml", "b/x.yaml"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("predict:\n  nms_thresh: 0.4\n")
    with pytest.raises(DigitdetError, match="reserved"):
        make_variants([CPU], [tmp_path / "baseline.yaml"], [])
    with pytest.raises(DigitdetError, match="given twice"):
        make_variants([CPU], [tmp_path / "a/x.yaml", tmp_path / "b/x.yaml"], [])


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablate")
    data = make_tiny_dataset(root / "data")
    delta = root / "nms05.yaml"
    delta.write_text("# evaluation only\npredict:\n  nms_thresh: 0.5\n")
    runs = root / "runs"
    rows = run_ablation([CPU], [delta], data, runs, overrides=FAST, epochs=1, progress=False)
    return {"data": data, "delta": delta, "runs": runs, "rows": rows}


def _again(ab, **kw):
    return run_ablation([CPU], [ab["delta"]], ab["data"], ab["runs"], overrides=FAST, epochs=1, progress=False, **kw)


def test_ablate_trains_evaluates_and_writes_the_report(ablation):
    runs, rows = ablation["runs"], ablation["rows"]
    assert [r["variant"] for r in rows] == ["baseline", "nms05"]
    assert [r["status"] for r in rows] == ["trained", "evaluated"]
    for name in ("results.md", "results.csv", "results.png", "curves.png"):
        assert (runs / name).is_file(), name
    assert (runs / "baseline" / "best.pt").is_file() and not (runs / "nms05" / "best.pt").exists()
    table = list(csv.DictReader(io.StringIO((runs / "results.csv").read_text())))
    assert [r["variant"] for r in table] == ["baseline", "nms05"]
    for r in table:
        for key in ("AP", "AP50", "AR100", "number_accuracy", "train_minutes", "infer_images_per_s", "epochs",
                    "changes"):
            assert r[key] != "", key
        assert float(r["infer_images_per_s"]) > 0 and r["epochs"] == "1"
    assert table[1]["changes"] == "predict.nms_thresh=0.5 (baseline weights)"
    assert table[1]["train_minutes"] == table[0]["train_minutes"]  # the baseline's weights, its cost
    md = (runs / "results.md").read_text()
    assert "| baseline |" in md and "| nms05 |" in md and "![learning curves](curves.png)" in md
    result = json.loads((runs / "nms05" / "result.json").read_text())
    assert result["config"]["predict"]["nms_thresh"] == 0.5 and result["images"] == 4


def test_rerun_skips_finished_variants(ablation, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise AssertionError("a finished variant was run again")

    monkeypatch.setattr(experiments, "fit", fail)
    monkeypatch.setattr(experiments, "evaluate_variant", fail)
    monkeypatch.setattr(experiments, "measure_speed", fail)
    before = (ablation["runs"] / "baseline" / "result.json").stat().st_mtime_ns
    rows = _again(ablation)
    assert [r["status"] for r in rows] == ["skipped", "skipped"]
    assert [r["AP"] for r in rows] == [r["AP"] for r in ablation["rows"]]
    assert (ablation["runs"] / "baseline" / "result.json").stat().st_mtime_ns == before
    # The same through the command line (overrides after the variant files).
    argv = ["-q", "ablate", "--base", str(CPU), "--data", str(ablation["data"]), "--out", str(ablation["runs"]),
            "--epochs", "1", str(ablation["delta"]), *FAST]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "skipped" in out and "results.md" in out


def test_a_variant_trained_but_not_evaluated_is_only_evaluated(ablation, monkeypatch):
    (ablation["runs"] / "baseline" / "result.json").unlink()

    def fail(*args, **kwargs):
        raise AssertionError("training had finished")

    monkeypatch.setattr(experiments, "fit", fail)
    rows = _again(ablation)
    assert [r["status"] for r in rows] == ["reused", "skipped"]
    assert (ablation["runs"] / "baseline" / "result.json").is_file()
    assert rows[0]["AP"] == pytest.approx(ablation["rows"][0]["AP"])


def test_resume_after_interruption_retrain_on_changed_config_and_with_force(ablation, monkeypatch):
    calls = []

    class Stop(Exception):
        pass

    def record(cfg, data_dir, out, resume=False, progress=True):
        calls.append((out.name, resume, cfg.train.epochs))
        raise Stop

    monkeypatch.setattr(experiments, "fit", record)
    run = ablation["runs"] / "baseline"
    for name in ("result.json", "train_summary.json"):  # killed during training: last.pt is left
        (run / name).unlink()
    with pytest.raises(Stop):
        _again(ablation)
    assert calls == [("baseline", True, 1)]
    calls.clear()
    with pytest.raises(Stop):  # another budget: trained afresh, not resumed from the other config's last.pt
        run_ablation([CPU], [ablation["delta"]], ablation["data"], ablation["runs"], overrides=FAST, epochs=2,
                     progress=False)
    assert calls == [("baseline", False, 2)]
    calls.clear()
    with pytest.raises(Stop):
        _again(ablation, force=True)
    assert calls == [("baseline", False, 1)]
    assert not (run / "last.pt").exists() and not (run / "result.json").exists()  # nothing stale is kept


def test_an_unreadable_run_config_stops_and_deletes_nothing(tmp_path, monkeypatch):
    run = tmp_path / "runs" / "baseline"
    run.mkdir(parents=True)
    files = {"train_summary.json": "{}", "best.pt": "weights", "last.pt": "weights", "metrics.jsonl": "{}\n",
             "config.yaml": "train:\n  no_such_key: 1\n"}
    for name, text in files.items():
        (run / name).write_text(text)

    def fail(*args, **kwargs):
        raise AssertionError("a run whose config could not be read was retrained")

    monkeypatch.setattr(experiments, "fit", fail)
    cfg = make_variants([CPU], [], [])[0].cfg
    with pytest.raises(DigitdetError, match=r"config\.yaml cannot be read .*no_such_key.*nothing was deleted"):
        experiments.train_variant(cfg, tmp_path / "data", run, progress=False)
    assert {p.name: p.read_text() for p in run.iterdir()} == files


def test_a_torn_metrics_line_is_a_clear_error(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n{"epoch": 1, "val": {"AP"\n')
    with pytest.raises(DigitdetError, match=r"metrics\.jsonl:2: not a JSON line"):
        results._history(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n\n{"epoch": 1}\n')
    assert [h["epoch"] for h in results._history(tmp_path)] == [0, 1]
