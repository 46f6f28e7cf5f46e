import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from digitdet.errors import DataError
from digitdet.reading.predict import pred_csv_text, predict_folder
from tiny import SVHN4, train_tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("pred"))


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


def _messy_folder(root, real):
    """Readable images under phone-style and integer names, three bad files and a README."""
    root.mkdir()
    Image.open(real).convert("RGB").save(root / "house 12.jpg")
    Image.open(real).convert("RGB").save(root / "IMG_0042.PNG")
    Image.open(real).save(root / "3.png")
    (root / "cut.jpg").write_bytes((root / "house 12.jpg").read_bytes()[:-200])  # truncated pixel data
    (root / "empty.png").write_bytes(b"")
    (root / "notes.jpg").write_text("not a photo\n")
    (root / "README.md").write_text("not an image file name: ignored\n")
    return root


@pytest.mark.parametrize("workers", [0, 1])  # a bad file inside a DataLoader worker must not end the loader
def test_bad_files_are_skipped_and_any_names_get_ids(trained, tmp_path, workers):
    data, ckpt = trained
    folder = _messy_folder(tmp_path / "imgs", data / "test" / "1.png")
    warned = []
    summary = predict_folder(ckpt, folder, tmp_path / "out", overrides=(f"data.workers={workers}",),
                             warn=warned.append, visualize=3, progress=False)
    # 3.png keeps id 3; the other names follow in name order: IMG_0042.PNG, cut, empty, house 12, notes.
    names = {4: "IMG_0042.PNG", 5: "cut.jpg", 6: "empty.png", 7: "house 12.jpg", 8: "notes.jpg", 3: "3.png"}
    images = json.loads((tmp_path / "out" / "images.json").read_text())
    assert {r["id"]: r["file_name"] for r in images} == names
    sizes = {r["file_name"]: (r["width"], r["height"]) for r in images}
    assert sizes["3.png"] == Image.open(folder / "3.png").size
    assert sizes["cut.jpg"] == sizes["empty.png"] == sizes["notes.jpg"] == (None, None)
    results, rows = check_outputs(tmp_path / "out", set(names))
    assert {int(r[0]): r[1] for r in rows[1:]}.keys() == set(names)
    assert all(label == "-1" for i, label in rows[1:] if int(i) in (5, 6, 8))
    assert {r["image_id"] for r in results} <= {3, 4, 7}
    assert len(warned) == 3 and all("\n" not in w for w in warned)
    for name, why in (("cut.jpg", "cannot decode image"), ("empty.png", "empty file"), ("notes.jpg", "not an image")):
        assert any(name in w and why in w for w in warned), (name, warned)
    assert summary["read"] == 3 and summary["images"] == 6 and len(summary["skipped"]) == 3
    assert (tmp_path / "out" / "gallery.png").is_file()


def test_cli_exit_codes_and_one_line_per_bad_file(trained, tmp_path, capsys):
    from digitdet.cli import main

    data, ckpt = trained
    folder = _messy_folder(tmp_path / "imgs", data / "test" / "1.png")
    assert main(["-q", "predict", "--checkpoint", str(ckpt), "--images", str(folder), "--out",
                 str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert err.count("digitdet: warning: skipped ") == 3 and len(err.strip().splitlines()) == 3
    assert "Traceback" not in err and "3 images read, 3 skipped" in out
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("cut.jpg", "empty.png", "notes.jpg"):
        (bad / name).write_bytes((folder / name).read_bytes())
    assert main(["-q", "predict", "--checkpoint", str(ckpt), "--images", str(bad), "--out",
                 str(tmp_path / "out2")]) == 2
    out, err = capsys.readouterr()
    assert "0 images read, 3 skipped" in out and "none of the 3 images" in err and "Traceback" not in err
    rows = (tmp_path / "out2" / "pred.csv").read_text().splitlines()
    assert rows == ["image_id,pred_label", "1,-1", "2,-1", "3,-1"]


class WholeImageBox(torch.nn.Module):
    """A stand-in detector: one box around the whole input tensor; records the tensor sizes it sees."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, images):
        self.seen += [tuple(im.shape[-2:]) for im in images]
        return [{"boxes": torch.tensor([[0.0, 0.0, im.shape[-1], im.shape[-2]]]), "scores": torch.tensor([0.9]),
                 "labels": torch.tensor([4])} for im in images]


def test_big_images_are_downscaled_and_boxes_mapped_back(trained, tmp_path):
    from digitdet.model.inference import run_inference

    data, ckpt = trained
    folder = tmp_path / "imgs"
    folder.mkdir()
    arr = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(arr).save(folder / "big.jpg")
    Image.fromarray(arr[:50, :60]).save(folder / "small.png")
    fake = WholeImageBox()
    predict_folder(ckpt, folder, tmp_path / "out", overrides=("predict.max_pixels=10000",), progress=False,
                   runner=lambda loader: run_inference(fake, loader, torch.device("cpu"), progress=False))
    assert sorted(fake.seen) == [(50, 60), (86, 115)]  # 400x300 = 120,000 px loaded at 115x86, under 10,000
    boxes = {r["image_id"]: r["bbox"] for r in json.loads((tmp_path / "out" / "pred.json").read_text())}
    assert boxes[1] == pytest.approx([0, 0, 400, 300]) and boxes[2] == pytest.approx([0, 0, 60, 50])


def test_an_upsampling_config_loads_big_images_at_a_quarter_of_the_budget(trained, tmp_path):
    """predict.max_pixels holds for the tensor the model gets (Config.load_pixels): with data.upsample: 2 a
    photo is loaded at max_pixels / 4 and upsampled to the budget; boxes come back in the file's pixels.
    Mutation: "max_pixels": cfg.predict.max_pixels in predict_folder."""
    from digitdet.model.inference import run_inference

    _, ckpt = trained
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(folder / "big.png")
    fake = WholeImageBox()
    predict_folder(ckpt, folder, tmp_path / "out", overrides=("data.upsample=2", "predict.max_pixels=40000"),
                   progress=False,
                   runner=lambda loader: run_inference(fake, loader, torch.device("cpu"), progress=False))
    assert fake.seen == [(172, 230)]  # loaded at 115x86 (10,000 px), then x 2: within 40,000 px
    (pred,) = json.loads((tmp_path / "out" / "pred.json").read_text())
    assert pred["bbox"] == pytest.approx([0, 0, 400, 300])


def test_ann_json_ids_and_a_bad_file_listed_there(trained, tmp_path):
    data, ckpt = trained
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.open(data / "test" / "1.png").save(folder / "a.png")
    (folder / "b.png").write_bytes(b"")
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [{"id": 40, "file_name": "a.png", "width": 1, "height": 1},
                                          {"id": 41, "file_name": "b.png", "width": 1, "height": 1},
                                          {"id": 42, "file_name": "gone.png", "width": 1, "height": 1}],
                               "annotations": []}))
    warned = []
    summary = predict_folder(ckpt, folder, tmp_path / "out", ann_file=ann, warn=warned.append, progress=False)
    check_outputs(tmp_path / "out", {40, 41, 42})
    assert summary["read"] == 1 and len(warned) == 2 and "gone.png: image file not found" in warned[1]
    assert not (tmp_path / "out" / "images.json").exists()  # the json already says which id is which file
    ann.write_text('{"images": [}')
    with pytest.raises(DataError, match="invalid JSON"):  # the json itself must be valid: fails fast
        predict_folder(ckpt, folder, tmp_path / "out2", ann_file=ann, progress=False)


def test_csv_text_sorted():
    assert pred_csv_text({10: "5", 2: "-1", 3: "117"}) == "image_id,pred_label\n2,-1\n3,117\n10,5\n"


def test_train_amp_false_turns_mixed_precision_off_at_inference(trained, tmp_path, monkeypatch):
    import contextlib

    import torch

    from digitdet.model import inference
    from digitdet.model.checkpoint import model_from_checkpoint
    from digitdet.training.evaluate import evaluate_split

    # (autocast on CUDA with amp on cannot be checked here: torch disables it on a machine without CUDA)
    assert not inference.autocast(torch.device("cuda"), False)._enabled
    assert not inference.autocast(torch.device("cpu"), True)._enabled  # CPU inference stays float32
    seen = []

    def spy(device, amp):
        seen.append(bool(amp))
        return contextlib.nullcontext()

    monkeypatch.setattr(inference, "autocast", spy)
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
