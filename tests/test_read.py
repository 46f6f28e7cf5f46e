"""`digitdet read` and the Reader: plain and JSON output, folders, bad files, --show."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from digitdet.cli import main
from digitdet.reading.reader import Reader, image_files
from tiny import train_tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("read"))


@pytest.fixture
def photos(checkpoint, tmp_path):
    data, _ = checkpoint
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.open(data / "test" / "1.png").save(folder / "house 12.jpg")
    Image.open(data / "test" / "2.png").resize((900, 700)).save(folder / "IMG_0042.PNG")
    (folder / "notes.jpg").write_text("not an image")
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    return folder


def test_plain_output_one_line_per_image_and_bad_files_skipped(checkpoint, photos, capsys):
    _, ckpt = checkpoint
    assert main(["read", str(photos), "predict.read_thresh=0.0", "--checkpoint", str(ckpt)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(photos / "IMG_0042.PNG"), str(photos / "house 12.jpg")]
    for line in lines:
        _, number, conf = line.split("\t")
        assert number == "" or number.isdigit()
        assert 0.0 <= float(conf) <= 1.0
    assert err.count("warning") == 1 and "notes.jpg" in err and "Traceback" not in err
    assert "2 read, 1 skipped" in err


def test_json_schema(checkpoint, photos, capsys):
    _, ckpt = checkpoint
    assert main(["-q", "read", "--json", str(photos / "house 12.jpg"), str(photos / "notes.jpg"),
                 "predict.read_thresh=0.0", "--checkpoint", str(ckpt)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [g["file"] for g in got] == [str(photos / "house 12.jpg"), str(photos / "notes.jpg")]
    ok, bad = got
    assert set(ok) == {"file", "number", "confidence", "digits", "candidates", "ms"}
    assert ok["number"] is None or ok["number"].isdigit()
    for d in ok["digits"]:
        assert set(d) == {"box", "digit", "score"} and len(d["box"]) == 4 and 0 <= d["digit"] <= 9
    for c in ok["candidates"]:
        assert set(c) == {"number", "confidence", "box"}
    if ok["candidates"]:
        assert ok["candidates"][0]["number"] == ok["number"]
    assert bad["number"] is None and "notes.jpg" in bad["error"]


def test_nothing_readable_exits_2(checkpoint, tmp_path, capsys):
    _, ckpt = checkpoint
    (tmp_path / "a.png").write_bytes(b"")
    assert main(["read", str(tmp_path / "a.png"), "--checkpoint", str(ckpt)]) == 2
    assert "a.png" in capsys.readouterr().err
    assert main(["read", str(tmp_path / "missing_folder_or_file.jpg"), "--checkpoint", str(ckpt)]) == 2


def test_show_writes_a_picture(checkpoint, photos, tmp_path):
    _, ckpt = checkpoint
    out = tmp_path / "shown.png"
    assert main(["-q", "read", str(photos / "IMG_0042.PNG"), "--checkpoint", str(ckpt), "--show", str(out)]) == 0
    im = Image.open(out)
    assert im.width == 900 and im.height == 700 + 28


def test_reader_boxes_are_in_original_pixels(checkpoint, photos):
    _, ckpt = checkpoint
    reader = Reader(ckpt, overrides=("predict.read_thresh=0.0",))
    r = reader.read_file(photos / "IMG_0042.PNG")
    assert r.error is None
    for d in r.digits:
        x0, y0, x1, y1 = d.box
        assert -1 <= x0 < x1 <= 901 and -1 <= y0 < y1 <= 701


def test_image_files_lists_folders_by_suffix_and_keeps_files(photos):
    got = image_files([photos, photos / "readme.txt"])
    assert [p.name for p in got] == ["IMG_0042.PNG", "house 12.jpg", "notes.jpg", "readme.txt"]


def test_a_packed_reader_loads_safely_and_reads_like_its_checkpoint(checkpoint, photos, tmp_path, monkeypatch):
    import torch

    from digitdet.model.packed import pack_reader
    from digitdet.reading import reader as reader_mod

    _, ckpt = checkpoint
    packed = tmp_path / "reader.pt"
    pack_reader(ckpt, packed, {"torch": torch.__version__, "path": tmp_path})  # str subclasses and paths too
    loaded = torch.load(packed, weights_only=True)
    assert all(v.dtype != torch.float32 for v in loaded["model"].values())
    monkeypatch.setattr(reader_mod, "bundled_reader_path", lambda: packed)
    a = Reader(overrides=("predict.read_thresh=0.0", "predict.close_frac=null")).read_file(photos / "house 12.jpg")
    b = Reader(ckpt, overrides=("predict.read_thresh=0.0",)).read_file(photos / "house 12.jpg")
    assert a.number == b.number and len(a.digits) == len(b.digits)


def test_a_photo_stored_sideways_is_read_upright(checkpoint, photos, tmp_path):
    """A phone's portrait photo: pixels stored turned, EXIF orientation 6 says how to show it."""
    _, ckpt = checkpoint
    shown = Image.open(photos / "IMG_0042.PNG").convert("RGB")  # 900 x 700 as a viewer shows it
    shown.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    shown.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.png", exif=exif)
    assert Image.open(tmp_path / "sideways.png").size == (700, 900)
    reader = Reader(ckpt, overrides=("predict.read_thresh=0.0",))
    a, b = reader.read_file(tmp_path / "upright.png"), reader.read_file(tmp_path / "sideways.png")
    assert a.number == b.number and len(a.digits) == len(b.digits) > 0
    for x, y in zip(a.digits, b.digits):
        assert x.digit == y.digit and max(abs(p - q) for p, q in zip(x.box, y.box)) < 1e-3
        assert y.box[2] <= 900 and y.box[3] <= 700


# ---------------------------------------------------------------- a stand-in detector (no model needed)

# Two digits, "1" and "2" (labels 2 and 3), at these fractions of whatever tensor the detector gets.
FRACS = [(0.20, 0.25, 0.40, 0.75), (0.45, 0.25, 0.65, 0.75)]


class FractionBoxes:
    """A stand-in for the reader's detector: boxes at FRACS of each input tensor; records (width, height)
    of every tensor it is given."""

    def __init__(self):
        self.seen = []

    def __call__(self, images):
        out = []
        for im in images:
            h, w = im.shape[-2:]
            self.seen.append((w, h))
            boxes = torch.tensor([[x0 * w, y0 * h, x1 * w, y1 * h] for x0, y0, x1, y1 in FRACS])
            out.append({"boxes": boxes, "scores": torch.tensor([0.99, 0.99]), "labels": torch.tensor([2, 3])})
        return out


@pytest.fixture
def stand_in(monkeypatch):
    """Every Reader built in the test (the bundled reader's config, read or --json alike) detects with a
    FractionBoxes, returned here."""
    from digitdet.reading import reader as reader_mod

    fake = FractionBoxes()
    monkeypatch.setattr(reader_mod, "for_inference", lambda model, cfg: fake)
    return fake


@pytest.fixture
def big_photo(tmp_path):
    """A 400 x 300 photo: 120,000 px, over the small budgets below."""
    path = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(path)
    return path


def _expected(width, height):
    return sorted([x0 * width, y0 * height, x1 * width, y1 * height] for x0, y0, x1, y1 in FRACS)


def test_a_photo_downscaled_on_load_gets_boxes_in_its_own_pixels(stand_in, big_photo, capsys):
    """Mutation: drop the `det["boxes"] = det["boxes"] * ...` line of Reader.read_image."""
    assert main(["-q", "read", "--json", str(big_photo), "predict.max_pixels=20000"]) == 0
    (got,) = json.loads(capsys.readouterr().out)
    (w, h), = stand_in.seen
    assert w * h <= 20000 and w < 400  # the detector saw the downscaled photo ...
    assert got["number"] == "12"
    boxes = sorted(d["box"] for d in got["digits"])
    assert boxes == [pytest.approx(b, abs=0.15) for b in _expected(400, 300)]  # ... boxes in the file's


def test_an_upsampling_config_loads_a_big_photo_at_a_quarter_of_the_budget(stand_in, big_photo, monkeypatch):
    """predict.max_pixels holds for the tensor the model gets: with data.upsample: 2 a photo is loaded at
    max_pixels / 4 (Config.load_pixels), then upsampled to the budget.
    Mutation: read_image(path, self.cfg.predict.max_pixels) in Reader.read_file (as on c0f0efe)."""
    reader = Reader(overrides=("data.upsample=2", "predict.max_pixels=40000"))
    loaded = []
    real = reader._tensor  # the loaded image becomes the model's tensor here

    def spy(image):
        loaded.append(image.size)
        return real(image)

    monkeypatch.setattr(reader, "_tensor", spy)
    r = reader.read_file(big_photo)
    assert r.error is None and r.number == "12"
    assert loaded == [(115, 86)]  # 400 x 300 fitted to 10,000 px
    assert stand_in.seen == [(230, 172)]  # upsampled x 2: within the 40,000 px budget


def test_an_upsampling_config_gives_boxes_in_the_files_pixels(stand_in, tmp_path):
    """data.upsample: 2 (configs/seed.yaml): the detector sees the photo at twice its size; the boxes
    `digitdet read` and serve give must still be in the photo's own pixels."""
    path = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(path)
    r = Reader(overrides=("data.upsample=2",)).read_file(path)
    assert stand_in.seen == [(240, 180)] and r.number == "12"
    assert sorted(list(d.box) for d in r.digits) == [pytest.approx(b, abs=1e-3) for b in _expected(120, 90)]


@pytest.mark.parametrize("items", [["predict.read_thresh=0.5"], ["predict.read_thresh=0.5", "data.upsample=2"]])
def test_an_override_without_a_path_is_one_clear_error(items, capsys):
    """`digitdet read predict.read_thresh=0.5`: one error line naming the override and asking for a path
    (it said "no image files in " with nothing after it); no model is loaded."""
    assert main(["read", *items]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("digitdet: error: ") and "predict.read_thresh=0.5" in err
    assert "section.key=value override" in err and "at least one image path" in err


def test_a_folder_without_images_still_says_so(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no image")
    assert main(["read", str(tmp_path), "predict.read_thresh=0.5"]) == 2
    err = capsys.readouterr().err
    assert f"no image files in {tmp_path}" in err and "override" not in err
