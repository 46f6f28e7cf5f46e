"""The command line end to end on a tiny generated dataset, and its exit codes on bad input."""

import json

import pytest

from digitdet.cli import main
from tiny import CPU, TINY


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "data"
    assert main(["-q", "synth", str(out), "--train", "8", "--valid", "4", "--test", "4",
                 "--seed", "3", "--workers", "1"]) == 0
    return out


def test_synth_check_train_eval_predict(data, tmp_path, capsys):
    assert main(["check", str(data)]) == 0
    assert "train" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["-q", "train", "--config", str(CPU), "--data", str(data), "--out", str(run),
                 "--max-epochs", "1", *TINY[1:]]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epochs"] == 1
    assert main(["-q", "eval", "--checkpoint", str(run / "best.pt"), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in out
    assert "number accuracy" in out
    metrics = json.loads((run / "metrics_valid.json").read_text())
    assert set(metrics["coco"]) >= {"AP", "AP50", "AP75"} and 0 <= metrics["number_accuracy"] <= 1
    pred = tmp_path / "pred"
    assert main(["-q", "predict", "--checkpoint", str(run / "best.pt"), "--images", str(data / "test"),
                 "--out", str(pred), "--visualize", "2"]) == 0
    assert (pred / "pred.json").is_file() and (pred / "pred.csv").is_file() and (pred / "gallery.png").is_file()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["check", "{tmp}/nothing"], "nothing"),
        (["train", "--config", str(CPU), "--data", "{tmp}/nothing", "--out", "{tmp}/r"], "nothing"),
        (["train", "--config", str(CPU), "--data", "{data}", "--out", "{tmp}/r", "train.lrr=1"], "train.lrr"),
        (["train", "--config", "{tmp}/missing.yaml", "--data", "{data}", "--out", "{tmp}/r"], "missing.yaml"),
        (["eval", "--checkpoint", "{tmp}/none.pt", "--data", "{data}"], "none.pt"),
        (["predict", "--checkpoint", "{tmp}/bad.pt", "--images", "{data}/test", "--out", "{tmp}/p"], "bad.pt"),
        (["line", "prepare", "{tmp}/nothing", "--out", "{tmp}/l.npz"], "nothing"),
        (["line", "train", "{tmp}/none.npz", "--out", "{tmp}/l.pt"], "none.npz"),
        (["line", "train", "{tmp}/bad.pt", "--out", "{tmp}/l.pt"], "bad.pt"),
        (["line", "pack", "{tmp}/bad.pt", "--out", "{tmp}/p.pt"], "bad.pt"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(argv, fragment, data, tmp_path, capsys):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    argv = [a.format(tmp=tmp_path, data=data) for a in argv]
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitdet: error:") and fragment in err and "\n" not in err
    assert not (tmp_path / "p" / "pred.json").exists()


def test_demo_generates_data_trains_and_summarizes(tmp_path, capsys):
    out, data = tmp_path / "demo", tmp_path / "synth"
    assert main(["-q", "demo", "--out", str(out), "--data", str(data), "--train", "8", "--valid", "4",
                 "--test", "4", *TINY, "train.epochs=1"]) == 0
    assert (data / "test.json").is_file()  # the embedded dataset was generated
    for name in ("best.pt", "pred.json", "pred.csv", "curve.png", "gallery.png", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert {"mAP", "AP50", "number_accuracy", "minutes", "train_images_per_s"} <= set(summary)
    assert 0 <= summary["mAP"] <= 1 and summary["minutes"] > 0
    assert "| test number accuracy |" in capsys.readouterr().out


def _folder_digest(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_demo_never_replaces_a_users_dataset(data, tmp_path, capsys):
    # Real data without test.json (the README calls it optional) plus the user's own notes.
    mine = tmp_path / "my_course_data"
    for split in ("train", "valid", "test"):
        for src in sorted((data / split).glob("*.png")):
            (mine / split).mkdir(parents=True, exist_ok=True)
            (mine / split / src.name).write_bytes(src.read_bytes())
    for split in ("train", "valid"):
        (mine / f"{split}.json").write_bytes((data / f"{split}.json").read_bytes())
    (mine / "notes.txt").write_text("my labelling notes\n")
    before = _folder_digest(mine)
    assert main(["-q", "demo", "--out", str(tmp_path / "demo"), "--data", str(mine), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitdet: error:") and "\n" not in err
    assert str(mine) in err and "test.json" in err and "untouched" in err
    assert _folder_digest(mine) == before
    assert not (tmp_path / "demo" / "best.pt").exists()


def test_synth_refuses_a_non_empty_folder_but_replaces_its_own(tmp_path, capsys):
    def synth(folder, train=2):
        return main(["-q", "synth", str(folder), "--train", str(train), "--valid", "1", "--test", "1",
                     "--workers", "1"])

    target = tmp_path / "photos"
    target.mkdir()
    (target / "house.jpg").write_bytes(b"my photo")
    assert synth(target) == 2
    err = capsys.readouterr().err
    assert "house.jpg" in err and "refusing" in err
    assert (target / "house.jpg").read_bytes() == b"my photo" and len(list(target.iterdir())) == 1
    ours = tmp_path / "ours"
    assert synth(ours) == 0
    assert synth(ours, train=3) == 0  # regenerating its own output is fine
    assert len(list((ours / "train").glob("*.png"))) == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    assert synth(empty) == 0


# torch's DataLoader tears its worker queues down while a feeder thread still runs: noise, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_bad_image_read_by_loader_workers_is_one_line(data, tmp_path, capsys):
    """Prediction skips it with one warning and goes on; training fails fast with one error line."""
    import shutil

    run = tmp_path / "run"
    assert main(["-q", "train", "--config", str(CPU), "--data", str(data), "--out", str(run),
                 "--max-epochs", "1", *TINY[1:]]) == 0
    capsys.readouterr()
    images = tmp_path / "images"
    images.mkdir()
    for src in sorted((data / "test").glob("*.png"))[:3]:
        (images / src.name).write_bytes(src.read_bytes())
    whole = (images / "1.png").read_bytes()
    (images / "1.png").write_bytes(whole[: len(whole) // 2])  # the header reads, the pixels do not
    argv = ["-q", "predict", "--checkpoint", str(run / "best.pt"), "--images", str(images),
            "--out", str(tmp_path / "p"), "data.workers=2"]
    assert main(argv) == 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("digitdet: warning:") and "1.png" in err
    assert "Traceback" not in err and "worker" not in err
    assert "1,-1" in (tmp_path / "p" / "pred.csv").read_text().splitlines()

    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    first = sorted((broken / "train").glob("*.png"))[0]
    first.write_bytes(first.read_bytes()[: len(first.read_bytes()) // 2])
    assert main(["-q", "train", "--config", str(CPU), "--data", str(broken), "--out", str(tmp_path / "r2"),
                 "--max-epochs", "1", *TINY[1:], "data.workers=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitdet: error:") and first.name in err
    assert "\n" not in err and "Traceback" not in err and "worker" not in err


def test_demo_remakes_its_own_data_only_when_asked_for_other_counts(tmp_path, monkeypatch):
    from digitdet.studies import demo

    data = tmp_path / "synth"
    counts = {"train": 3, "valid": 2, "test": 2}
    assert demo.ensure_dataset(data, counts, seed=0, progress=False) is True
    stamp = (data / "train.json").stat().st_mtime_ns
    assert demo.ensure_dataset(data, counts, seed=0, progress=False) is False  # complete and as asked
    assert (data / "train.json").stat().st_mtime_ns == stamp
    assert demo.ensure_dataset(data, {**counts, "train": 4}, seed=0, progress=False) is True
    assert len(list((data / "train").glob("*.png"))) == 4
    from digitdet.data.synth import generate_dataset

    generate_dataset(data, counts, seed=0, modes={"crop": 0.5, "scene": 0.5}, progress=False)
    assert demo.ensure_dataset(data, counts, seed=0, progress=False) is True  # another mix: made again
    marker = json.loads((data / "digitdet-synth.json").read_text())
    assert marker["modes"] == {"crop": 1.0}
    del marker["format"]  # made by a generator before lookalikes: made again, and they are there
    (data / "digitdet-synth.json").write_text(json.dumps(marker))
    assert demo.ensure_dataset(data, counts, seed=0, progress=False) is True
    assert "lookalikes" in json.loads((data / "train.json").read_text())
    (data / "digitdet-synth.json").unlink()  # no marker: a complete dataset of someone's, used as is
    assert demo.ensure_dataset(data, counts, seed=1, progress=False) is False
    assert len(list((data / "train").glob("*.png"))) == 3
