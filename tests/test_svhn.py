"""svhn.py: a tiny digitStruct.mat written with h5py in SVHN's own layout -> COCO json."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from PIL import Image

from digitdet.data.coco import load_coco
from digitdet.data.svhn import FIELDS, convert_svhn, svhn_label_to_category
from digitdet.errors import DataError


def write_digit_struct(path, entries):
    """entries: [(name, [{'height','label','left','top','width'}, ...])], stored like MATLAB v7.3 does:
    name[i] -> uint16 char column; bbox[i] -> group whose fields are inline (one digit) or references."""
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        counter = iter(range(10**6))

        def new_dataset(data):
            return refs.create_dataset(f"d{next(counter)}", data=data).ref

        name_refs, bbox_refs = [], []
        for name, digits in entries:
            name_refs.append(new_dataset(np.array([[ord(c)] for c in name], dtype=np.uint16)))
            group = refs.create_group(f"g{next(counter)}")
            for field in FIELDS:
                values = [float(d[field]) for d in digits]
                if len(values) == 1:
                    group.create_dataset(field, data=np.array([[values[0]]]))  # inline scalar
                else:
                    cells = [[new_dataset(np.array([[v]]))] for v in values]
                    group.create_dataset(field, data=np.array(cells, dtype=h5py.ref_dtype))
            bbox_refs.append(group.ref)
        struct = f.create_group("digitStruct")
        struct.create_dataset("name", data=np.array([[r] for r in name_refs], dtype=h5py.ref_dtype))
        struct.create_dataset("bbox", data=np.array([[r] for r in bbox_refs], dtype=h5py.ref_dtype))


def digit(label, left, top, width, height):
    return {"label": label, "left": left, "top": top, "width": width, "height": height}


ENTRIES = [
    ("1.png", [digit(10, 3, 4, 10, 14)]),  # one digit "0": inline scalars
    ("12.png", [digit(1, 2, -1, 8, 12), digit(9, 10, 1, 8, 12), digit(10, 18, 1, 9, 12)]),  # "190", refs
]


@pytest.fixture
def svhn_folder(tmp_path):
    folder = tmp_path / "svhn_train"
    folder.mkdir()
    Image.new("RGB", (30, 20)).save(folder / "1.png")
    Image.new("RGB", (26, 16)).save(folder / "12.png")
    write_digit_struct(folder / "digitStruct.mat", ENTRIES)
    return folder


def test_label_mapping():
    assert svhn_label_to_category(10) == 1  # digit 0
    assert svhn_label_to_category(1) == 2
    assert svhn_label_to_category(9) == 10
    with pytest.raises(ValueError):
        svhn_label_to_category(0)


def test_convert(svhn_folder, tmp_path):
    out = tmp_path / "data" / "train.json"
    summary = convert_svhn(svhn_folder / "digitStruct.mat", out)  # images found next to the .mat
    assert summary == {"images": 2, "annotations": 4, "clipped": 2, "dropped": 0, "out_json": str(out)}
    raw = json.loads(out.read_text())
    assert raw["images"] == [
        {"id": 1, "file_name": "1.png", "width": 30, "height": 20},
        {"id": 12, "file_name": "12.png", "width": 26, "height": 16},
    ]
    anns = raw["annotations"]
    assert [a["image_id"] for a in anns] == [1, 12, 12, 12]
    assert [a["category_id"] for a in anns] == [1, 2, 10, 1]  # digits 0 | 1, 9, 0
    assert anns[0]["bbox"] == [3, 4, 10, 14] and anns[0]["area"] == 140
    assert anns[1]["bbox"] == [2, 0, 8, 11]  # top -1 clipped to 0 (height 12 -> 11)
    assert anns[3]["bbox"] == [18, 1, 8, 12]  # right edge 27 clipped to the 26-px width
    assert len({a["id"] for a in anns}) == 4 and all(a["iscrowd"] == 0 for a in anns)
    assert [c["id"] for c in raw["categories"]] == list(range(1, 11)) and raw["categories"][0]["name"] == "0"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp file left behind

    # The output is in the course layout and passes validation against the images.
    coco = load_coco(out, image_dir=svhn_folder)
    assert coco.clipped == 0 and coco.labels[12].tolist() == [2, 10, 1]


def test_convert_with_separate_image_dir(svhn_folder, tmp_path):
    mat = tmp_path / "digitStruct.mat"
    (svhn_folder / "digitStruct.mat").rename(mat)
    with pytest.raises(DataError, match=r"1\.png not found"):
        convert_svhn(mat, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
    assert convert_svhn(mat, tmp_path / "out.json", image_dir=svhn_folder)["images"] == 2


def test_convert_errors(tmp_path):
    Image.new("RGB", (30, 20)).save(tmp_path / "1.png")
    Image.new("RGB", (30, 20)).save(tmp_path / "house.png")
    mat = tmp_path / "digitStruct.mat"
    write_digit_struct(mat, [("1.png", [digit(11, 1, 1, 5, 5)])])
    with pytest.raises(DataError, match=r"1\.png.*label 11"):
        convert_svhn(mat, tmp_path / "a.json")
    write_digit_struct(mat, [("house.png", [digit(1, 1, 1, 5, 5)])])
    with pytest.raises(DataError, match="integer stem"):
        convert_svhn(mat, tmp_path / "a.json")
    mat.write_bytes(b"MATLAB 5.0 MAT-file, not HDF5")
    with pytest.raises(DataError, match="HDF5"):
        convert_svhn(mat, tmp_path / "a.json")
    with pytest.raises(DataError, match="not found"):
        convert_svhn(tmp_path / "missing.mat", tmp_path / "a.json")
