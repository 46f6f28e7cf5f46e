import csv
import json

import pytest

from digitdet import train as train_mod
from digitdet.config import load_config
from digitdet.errors import DataError
from digitdet.predict import pred_csv_text, predict_folder
from tiny import CPU, SVHN4, TINY, make_tiny_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pred")
    data = make_tiny_dataset(root / "data")
    train_mod.fit(load_config([CPU], [*TINY, "train.epochs=1"]), data, root / "run", progress=False)
    return data, root / "run" / "best.pt"


def check_outputs(out, ids):
    results = json.loads((out / "pred.json").read_text())
    assert isinstance(results, list)
    for r in results:
        assert set(r) == {"image_id", "bbox", "score", "category_id"}
        assert r["image_id"] in ids and 1 <= r["category_id"] <= 10 and len(r["bbox"]) == 4
        assert r["bbox"][2] >= 0 and r["bbox"][3] >= 0 and 0.05 <= r["score"] <= 1
    rows = list(csv.reader((out / "pred.csv").read_text().splitlines()))
    assert rows[0] == ["image_id", "pred_label"]
    got = [int(r[0]) for r in rows[1:]]
    assert got == sorted(ids)
    for _, label in rows[1:]:
        assert label == "-1" or label.isdigit()
    return results, rows


def test_predict_test_split_with_gallery(trained, tmp_path):
    data, ckpt = trained
    summary = predict_folder(ckpt, data / "test", tmp_path, visualize=4, progress=False)
    check_outputs(tmp_path, {1, 2, 3, 4})
    assert summary["images"] == 4
    assert (tmp_path / "gallery.png").stat().st_size > 1000


def test_predict_real_svhn_fixture_uses_json_ids(trained, tmp_path):
    if not SVHN4.is_dir():
        pytest.skip("../shared/fixtures/svhn4 not present")
    _, ckpt = trained
    predict_folder(ckpt, SVHN4 / "train", tmp_path, ann_file=SVHN4 / "train.json", progress=False)
    check_outputs(tmp_path, {1, 2, 3, 4})  # includes the 52x23 crop


def test_unread_images_are_minus_one(trained, tmp_path):
    data, ckpt = trained
    predict_folder(ckpt, data / "test", tmp_path, overrides=("predict.read_thresh=1.0",), progress=False)
    _, rows = check_outputs(tmp_path, {1, 2, 3, 4})
    assert {r[1] for r in rows[1:]} == {"-1"}


def test_non_integer_stem_without_json_is_an_error(trained, tmp_path):
    _, ckpt = trained
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    (img_dir / "house.png").write_bytes((SVHN4 / "train" / "3.png").read_bytes() if SVHN4.is_dir() else b"")
    with pytest.raises(DataError, match="house.png"):
        predict_folder(ckpt, img_dir, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "pred.json").exists()


def test_csv_text_sorted():
    assert pred_csv_text({10: "5", 2: "-1", 3: "117"}) == "image_id,pred_label\n2,-1\n3,117\n10,5\n"


def test_train_amp_false_turns_mixed_precision_off_at_inference(trained, tmp_path, monkeypatch):
    import contextlib

    import torch

    from digitdet import engine
    from digitdet.checkpoint import model_from_checkpoint
    from digitdet.evaluate import evaluate_split

    # (autocast on CUDA with amp on cannot be checked here: torch disables it on a machine without CUDA)
    assert not engine.autocast(torch.device("cuda"), False)._enabled
    assert not engine.autocast(torch.device("cpu"), True)._enabled  # CPU inference stays float32
    seen = []

    def spy(device, amp):
        seen.append(bool(amp))
        return contextlib.nullcontext()

    monkeypatch.setattr(engine, "autocast", spy)
    data, ckpt = trained
    for amp in (False, True):
        cfg, model, _ = model_from_checkpoint(ckpt, (f"train.amp={str(amp).lower()}",))
        seen.clear()
        evaluate_split(model, data, "valid", cfg, torch.device("cpu"), progress=False)
        assert seen and set(seen) == {amp}
        seen.clear()
        predict_folder(ckpt, data / "test", tmp_path / f"p{amp}", overrides=(f"train.amp={str(amp).lower()}",),
                       progress=False)
        assert seen and set(seen) == {amp}
