"""benchmarks/real_crops.py: the crop boxes of the real tight-crop variants cut from a photo's number box."""

import importlib.util
from pathlib import Path

import pytest

from tiny import ROOT

spec = importlib.util.spec_from_file_location("real_crops", ROOT / "benchmarks" / "real_crops.py")
real_crops = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real_crops)


def test_variants_pad_the_number_and_cut_the_outer_digits_by_the_share_asked():
    # A number 100..300 x 50..150 (height 100) of digits 100-160 ... 240-300, in a 400 x 200 photo.
    boxes = real_crops.crop_boxes((100, 50, 300, 150), (100, 50, 160, 150), (240, 50, 300, 150), (400, 200), 0.2)
    assert boxes["tight"] == (94, 44, 306, 156)  # padded by 0.06 of the height
    assert boxes["cut-left"] == (112, 44, 306, 156)  # 0.2 of the first digit's 60 px cut off
    assert boxes["cut-right"] == (94, 44, 288, 156)
    assert boxes["square"] == boxes["tight"]  # stretched to a square afterwards


def test_padding_stops_at_the_photo_border():
    boxes = real_crops.crop_boxes((2, 0, 50, 40), (2, 0, 20, 40), (30, 0, 50, 40), (52, 40), 0.4)
    assert boxes["tight"] == (0, 0, 52, 40)
    assert boxes["cut-left"][0] == pytest.approx(2 + 0.4 * 18, abs=0.5)


def test_peers_takes_a_folder_of_photos_by_its_path(tmp_path):
    from PIL import Image

    peers = real_crops.peers
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "1.jpg")
    (tmp_path / "numbers.csv").write_text("image_id,true_number\n1,12\n")
    assert peers.photo_folder(str(tmp_path)) == tmp_path
    assert peers.real_set(tmp_path) == [(str(tmp_path / "images" / "1.jpg"), "12")]
    assert peers.photo_folder("real_plaques") == peers.SHARED / "real_plaques"
    assert peers.photo_folder("cut") is None  # a synthetic mode


def test_the_turned_box_holds_the_number_where_pil_turns_it():
    # A 200 x 100 number box centred at (200, 100), turned 90 degrees counter-clockwise about its centre:
    # upright, 100 x 200, clipped at the photo's top.
    assert real_crops.turned_box((100, 50, 300, 150), 90, (400, 400)) == (150, 0, 250, 200)
    # A dot 40 px right of the centre goes where PIL's Image.rotate(+35, center=) puts it: inside the turned
    # box of a small box around it, as the turn-ccw / turn-cw crops are cut.
    from PIL import Image

    image = Image.new("L", (400, 300))
    image.putpixel((240, 100), 255)
    for degrees in (35, -35):
        turned = image.rotate(degrees, Image.Resampling.NEAREST, center=(200, 100))
        ys, xs = zip(*[(y, x) for y in range(300) for x in range(400) if turned.getpixel((x, y)) > 0])
        x0, y0, x1, y1 = real_crops.turned_box((156, 96, 244, 104), degrees, (400, 300))
        assert x0 <= min(xs) and max(xs) <= x1 and y0 <= min(ys) and max(ys) <= y1
        assert (y1 - y0) > 40  # turned 35 degrees, the thin box became tall


def test_peers_no_number_set_is_made_once_from_crops_of_the_test_photos_clear_of_every_digit(tmp_path, monkeypatch):
    """peers.py's no-number set: crops of the scene, sign and plaque test splits (tiny ones here), each inside
    its photo and clear of its digit and lookalike boxes, truth -1, made once (asked again it is read back).
    Mutations: crops of the valid split (none there: no set); truth not -1; the set made again each time."""
    import csv

    from PIL import Image

    from digitdet.data.coco import load_coco
    from tiny import make_tiny_dataset

    peers = real_crops.peers
    monkeypatch.setattr(peers, "CACHE", tmp_path)
    for k, mode in enumerate(("scene", "sign", "plaque")):
        make_tiny_dataset(tmp_path / mode, train=0, valid=0, test=4, seed=20 + k)
    items = peers.synthetic_set(peers.NO_NUMBER, 200)
    assert len(items) >= 4 and {truth for _, truth in items} == {"-1"}
    with (tmp_path / peers.NO_NUMBER / "numbers.csv").open(newline="") as f:
        sources = [r["source_file"] for r in csv.DictReader(f)]
    assert len(sources) == len(items)
    for (path, _), source in zip(items, sources):
        photo, box = source.rsplit(":", 1)
        x0, y0, x1, y1 = map(int, box.split(","))
        folder = Path(photo).parents[1]
        coco = load_coco(folder / "test.json", folder / "test", check_files=False)
        im = next(i for i in coco.images if i["file_name"] == Path(photo).name)
        assert Path(photo).parent.name == "test" and 0 <= x0 < x1 <= im["width"] and 0 <= y0 < y1 <= im["height"]
        assert Image.open(path).size == (x1 - x0, y1 - y0)
        taken = [*coco.boxes[im["id"]].reshape(-1, 4).tolist(), *coco.lookalikes.get(im["id"], [])]
        assert not any(b[0] < x1 and b[2] > x0 and b[1] < y1 and b[3] > y0 for b in taken)
    (tmp_path / peers.NO_NUMBER / "images" / "1.png").unlink()  # made once: read back as it is, not re-made
    assert len(peers.synthetic_set(peers.NO_NUMBER, 200)) == len(items) - 1
