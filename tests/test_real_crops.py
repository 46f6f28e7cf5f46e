"""benchmarks/real_crops.py: the crop boxes of the real tight-crop variants cut from a photo's number box."""

import importlib.util

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
