import csv
import json

import numpy as np
import pytest
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from digitdet import cli
from digitdet.config import load_config
from digitdet.errors import DigitdetError
from digitdet.model import build_model
from digitdet.model.onnx_runtime import make_session, onnx_runner
from digitdet.reading.export import BOX_TOL_PX, ExactResize, compare_detections, export_onnx
from digitdet.reading.predict import predict_folder
from tiny import CPU, SVHN4, TINY, make_tiny_dataset

pytest.importorskip("onnxruntime")

READ_LOW = "predict.read_thresh=0.5"  # random weights score ~0.1 per class; a glyph's presence sums its classes
SINGLE = "predict.scan=single"
# The graph takes one image at a time; eager batches pad images to a common size, which moves a random
# model's detections, so the eager side of a file comparison runs at batch 1 too.
BATCH1 = "predict.batch_size=1"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny random-weight checkpoint of the CPU model family, its ONNX export and 4 synthetic images."""
    root = tmp_path_factory.mktemp("export")
    cfg = load_config([CPU], TINY)
    torch.manual_seed(0)
    ckpt = root / "tiny.pt"
    torch.save({"config": cfg.to_dict(), "model": build_model(cfg).state_dict()}, ckpt)
    verify = [SVHN4 / "train"] if SVHN4.is_dir() else []
    result = export_onnx(ckpt, root / "tiny.onnx", verify_images=verify, overrides=(READ_LOW,))
    data = make_tiny_dataset(root / "data", train=0, valid=0, test=4)
    return ckpt, root / "tiny.onnx", data, result


def test_export_verified_against_eager(exported):
    _, onnx_path, _, result = exported
    v = result["verify"]
    assert v["ok"], v["problems"]
    assert v["images"] >= 5  # synthetic 52x23, typical, 741x350, 300x40 (+ the real fixtures)
    assert v["max_box_diff_px"] <= BOX_TOL_PX and v["max_score_diff"] <= 1e-3
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert "backbone: resnet18" in meta["digitdet_config"]
    session = make_session(onnx_path)
    assert session.get_inputs()[0].shape[1:] == ["height", "width"]  # any image size, batch 1


@pytest.mark.parametrize("min_size,max_size", [(104, 384), (64, 160), (800, 1333)])
def test_exact_resize_gives_torchvision_sizes(min_size, max_size):
    ref = GeneralizedRCNNTransform((min_size,), max_size, [0.0] * 3, [1.0] * 3).eval()
    ours = ExactResize.like(ref).eval()
    for h, w in [(23, 52), (40, 300), (350, 741), (83, 199), (1, 1), (600, 20)]:
        x = torch.zeros(3, h, w)
        assert ours.resize(x)[0].shape == ref.resize(x)[0].shape, (h, w)


def test_export_leaves_the_model_untouched(exported):
    from digitdet.model.checkpoint import model_from_checkpoint
    from digitdet.reading.export import trace_to_onnx

    ckpt, _, _, _ = exported
    _, model, _ = model_from_checkpoint(ckpt)
    before = model.transform
    trace_to_onnx(model, ckpt.parent / "again.onnx", opset=17)
    assert model.transform is before and type(before) is GeneralizedRCNNTransform


def _rows(path):
    return list(csv.reader(path.read_text().splitlines()))


def test_predict_onnx_writes_the_same_files(exported, tmp_path):
    ckpt, onnx_path, data, _ = exported
    # The exported graph is the model at its own scale: it matches eager prediction without the pyramid.
    eager = predict_folder(ckpt, data / "test", tmp_path / "eager", overrides=(READ_LOW, BATCH1, SINGLE),
                           progress=False)
    code = cli.main(["-q", "predict", "--checkpoint", str(ckpt), "--images", str(data / "test"),
                     "--out", str(tmp_path / "onnx"), "--onnx", str(onnx_path), READ_LOW])
    assert code == 0
    assert _rows(tmp_path / "onnx" / "pred.csv") == _rows(tmp_path / "eager" / "pred.csv")
    a = json.loads((tmp_path / "eager" / "pred.json").read_text())
    b = json.loads((tmp_path / "onnx" / "pred.json").read_text())
    assert eager["images"] == 4 and len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert (x["image_id"], x["category_id"]) == (y["image_id"], y["category_id"])
        assert np.abs(np.subtract(x["bbox"], y["bbox"])).max() <= BOX_TOL_PX
        assert abs(x["score"] - y["score"]) <= 1e-3


def test_runner_on_real_fixture_matches_eager(exported, tmp_path):
    if not SVHN4.is_dir():
        pytest.skip("../shared/fixtures/svhn4 not present")
    ckpt, onnx_path, _, _ = exported
    args = {"ann_file": SVHN4 / "train.json", "overrides": (READ_LOW, BATCH1, SINGLE), "progress": False}
    predict_folder(ckpt, SVHN4 / "train", tmp_path / "e", **args)
    predict_folder(ckpt, SVHN4 / "train", tmp_path / "o", runner=onnx_runner(onnx_path, progress=False), **args)
    rows = _rows(tmp_path / "o" / "pred.csv")
    assert rows == _rows(tmp_path / "e" / "pred.csv") and [r[0] for r in rows[1:]] == ["1", "2", "3", "4"]


def test_export_cli_and_user_errors(exported, tmp_path, capsys):
    ckpt, _, _, _ = exported
    out = tmp_path / "m.onnx"
    assert cli.main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--opset", "13"]) == 0
    assert out.stat().st_size > 1000 and "same numbers read" in capsys.readouterr().out
    assert cli.main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--opset", "9"]) == 2
    assert "opset >= 11" in capsys.readouterr().err
    assert cli.main(["export", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(out)]) == 2
    with pytest.raises(DigitdetError, match="not found"):
        onnx_runner(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(DigitdetError, match="not a loadable ONNX model"):
        make_session(tmp_path / "junk.onnx")


def test_int8_export_runs_and_is_smaller(exported, tmp_path):
    """The int8 export is smaller, and its verification counts the images on which it reads the number eager
    float32 reads, naming the others: int8 is approximate by design, and this random-weight model's junk
    numbers ("999" against "99999") need not all agree (at the default 0.65 random weights read '-1'
    everywhere, which any two models agree on: hence READ_LOW). With 8-bit weights (no reduce_range) it
    fails on an AVX2 host without VNNI: ONNX Runtime's u8s8 kernels saturate there (2026-12-05, AMD EPYC)."""
    import copy

    from digitdet.model.checkpoint import model_from_checkpoint
    from digitdet.model.onnx_runtime import run_image
    from digitdet.reading.export import verification_images, verify_onnx
    from digitdet.reading.numbers import read_number

    ckpt, _, _, _ = exported
    path = tmp_path / "int8.onnx"
    result = export_onnx(ckpt, path, synthetic=3, quantize=True, overrides=(READ_LOW,))
    assert result["quantized"] and result["verify"]["images"] == 3
    # Smaller by most of the 3 bytes per weight that int8 saves on the fully connected layers (the box
    # head's width is model.representation_size, so the saving is counted rather than a fixed ratio).
    cfg, model, _ = model_from_checkpoint(ckpt, (READ_LOW,))
    fc_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert (ckpt.parent / "tiny.onnx").stat().st_size - result["bytes"] > 0.7 * 3 * fc_weights

    # The numbers, read here from each side's raw detections on the same 3 images.
    images = verification_images(cfg, (), 3)
    session, p = make_session(path), cfg.predict
    eager, int8 = [], []
    for _, image in images:
        with torch.inference_mode():
            det = model([image])[0]
        out = run_image(session, image.numpy())
        eager.append(read_number(det["boxes"], det["scores"], det["labels"], p.read_thresh, p.dedup_iou))
        int8.append(read_number(out["boxes"], out["scores"], out["labels"], p.read_thresh, p.dedup_iou))
    assert all(n != "-1" and len(n) >= 1 for n in eager), eager
    v = result["verify"]
    assert v["same_numbers"] == sum(e == i for e, i in zip(eager, int8))
    assert sum("eager reads" in x for x in v["problems"]) == sum(e != i for e, i in zip(eager, int8))
    assert v["same_numbers"] >= 2, (eager, int8)  # a majority alike: int8 only rounds the box head's weights

    # The comparison can fail: an eager model whose classifier favours digit 4 reads other numbers.
    tampered = copy.deepcopy(model)
    with torch.no_grad():
        tampered.roi_heads.box_predictor.cls_score.bias[5] += 3.0  # label 5 = digit 4
    other = verify_onnx(tampered, path, images, cfg, strict_boxes=False)
    assert other["same_numbers"] == 0 and sum("eager reads 4" in x for x in other["problems"]) == 3


def test_compare_detections_hand_made():
    a = {"boxes": np.array([[0, 0, 10, 20], [30, 0, 40, 20]], np.float32), "scores": np.array([0.9, 0.5]),
         "labels": np.array([2, 3])}
    same = {k: v.copy() for k, v in a.items()}
    assert compare_detections(a, same, 0.05) == (0.0, 0.0, [])
    moved = {k: v.copy() for k, v in a.items()}
    moved["boxes"][1, 0] += 1.0  # 1 px > tolerance
    bd, _, problems = compare_detections(a, moved, 0.05)
    assert bd == pytest.approx(1.0) and len(problems) == 2  # seen from both sides
    missing = {k: v[:1] for k, v in a.items()}
    assert any("no partner" in p for p in compare_detections(a, missing, 0.05)[2])
    assert compare_detections(a, missing, 0.6)[2] == []  # below the compared score: ignored


def test_export_writes_out_only_when_verified(exported, tmp_path, monkeypatch):
    from digitdet.reading import export as export_mod

    ckpt, _, _, _ = exported
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the previous, good export")
    traced = []
    real_trace = export_mod.trace_to_onnx

    def spy(model, path, **kwargs):
        traced.append(path)
        real_trace(model, path, **kwargs)

    monkeypatch.setattr(export_mod, "trace_to_onnx", spy)
    monkeypatch.setattr(export_mod, "verify_onnx", lambda *a, **k: {"ok": False, "problems": ["boxes moved 3 px"],
                                                                     "images": 2})
    with pytest.raises(DigitdetError, match=r"boxes moved 3 px.*not written.*model\.rejected\.onnx"):
        export_onnx(ckpt, out, synthetic=1)
    assert traced and traced[0] != out  # traced under a temporary name, never onto OUT itself
    assert out.read_bytes() == b"the previous, good export"
    assert (tmp_path / "model.rejected.onnx").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.rejected.onnx"]
    monkeypatch.undo()
    result = export_onnx(ckpt, out, synthetic=1)
    assert result["verify"]["ok"] and out.stat().st_size == result["bytes"] > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.rejected.onnx"]


def test_a_lookalike_model_exports_with_eleven_classes_and_matches_eager(tmp_path):
    cfg = load_config([CPU], [*TINY, "model.lookalike_class=true"])
    torch.manual_seed(0)
    ckpt = tmp_path / "look.pt"
    torch.save({"config": cfg.to_dict(), "model": build_model(cfg).state_dict()}, ckpt)
    result = export_onnx(ckpt, tmp_path / "look.onnx", synthetic=2, overrides=(READ_LOW,))
    assert result["verify"]["ok"], result["verify"]["problems"]
    session = make_session(tmp_path / "look.onnx")
    _, labels, _ = session.run(None, {session.get_inputs()[0].name: np.random.default_rng(0).random(
        (3, 60, 120), dtype=np.float32)})
    assert len(labels) and labels.max() <= 10 and labels.min() >= 1
