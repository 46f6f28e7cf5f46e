"""Property tests (hypothesis): whatever a COCO json, an image file or a config override holds, digitdet
ends in its own one-line error (DataError / ConfigError) or, in batch prediction, a clean skip; never
another exception type. Few examples each, so the file stays fast; a failure prints the smallest input."""

from __future__ import annotations

import io
import json
import math

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

from digitdet.config import load_config  # noqa: E402
from digitdet.data import images  # noqa: E402
from digitdet.data.coco import DigitDataset, load_coco  # noqa: E402
from digitdet.data.folder import ImageFolder  # noqa: E402
from digitdet.errors import ConfigError, DataError, DigitdetError  # noqa: E402

FEW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------- COCO json

# Values of every JSON type, biased towards the near-misses a real file holds (3.0, "3", -1, 0, 1e300, nan).
scalars = st.one_of(
    st.integers(-3, 60), st.integers(), st.sampled_from([3.0, 2.5, -1.0, 0.0, 1e300, math.inf, math.nan]),
    st.floats(allow_nan=True), st.text(max_size=6), st.sampled_from(["3", "1.png", ""]), st.booleans(), st.none(),
)
values = st.one_of(scalars, st.lists(scalars, max_size=5), st.dictionaries(st.text(max_size=3), scalars, max_size=2))
file_names = st.one_of(st.sampled_from(["1.png", "2.png", "missing.png", "", ".", "..", "../train/1.png", "/",
                                        "sub/1.png", "x" * 300, "bad\x00name.png"]), values)
bboxes = st.one_of(st.lists(st.one_of(st.integers(-5, 50), st.floats(-5, 50), scalars), min_size=3, max_size=5),
                   values)


def record(fields: dict) -> st.SearchStrategy:
    """A JSON object whose fields are each usually present (2 chances in 3), sometimes missing."""
    parts = [st.one_of(st.just({}), *[strategy.map(lambda v, k=key: {k: v})] * 2) for key, strategy in fields.items()]
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


image_records = record({"id": st.one_of(st.integers(0, 4), values), "file_name": file_names,
                        "width": st.one_of(st.just(40), st.just(30), values),
                        "height": st.one_of(st.just(20), st.just(30), values)})
annotations = record({"id": st.one_of(st.integers(0, 6), values), "image_id": st.one_of(st.integers(0, 4), values),
                      "bbox": bboxes, "category_id": st.one_of(st.integers(-1, 12), values)})
documents = st.one_of(
    st.fixed_dictionaries({"images": st.lists(st.one_of(image_records, values), max_size=4),
                           "annotations": st.lists(st.one_of(annotations, values), max_size=5)}),
    st.dictionaries(st.sampled_from(["images", "annotations", "categories"]), values, max_size=3),
    values,
)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_coco") / "train"
    root.mkdir()
    Image.new("RGB", (40, 20), (200, 10, 10)).save(root / "1.png")
    Image.new("L", (30, 30), 128).save(root / "2.png")
    (root / "sub").mkdir()
    Image.new("RGB", (40, 20)).save(root / "sub" / "1.png")
    return root


def _one_image(**fields) -> dict:
    return {"images": [{"id": 1, "file_name": "1.png", "width": 40, "height": 20, **fields}], "annotations": []}


@FEW
@given(doc=documents)
@example(doc=_one_image(file_name="x" * 300))  # ENAMETOOLONG: an OSError out of Path.is_file() before
@example(doc=_one_image(file_name="bad\x00name.png"))
@example(doc={**_one_image(), "annotations": [{"id": 1, "image_id": 1, "bbox": [1e308, 0, 1e308, 5],
                                               "category_id": 2}]})
def test_any_coco_json_is_loaded_or_a_data_error(image_dir, doc):
    ann = image_dir.parent / "train.json"
    ann.write_text(json.dumps(doc))
    for check_files in (True, False):
        try:
            coco = load_coco(ann, image_dir, check_files=check_files)
        except DataError as exc:
            assert "\n" not in str(exc) and str(ann) in str(exc)
            continue
        assert set(coco.boxes) == {int(rec["id"]) for rec in coco.images}
    try:
        ds = DigitDataset(image_dir, ann)
    except DataError:
        return
    for i in range(len(ds)):
        image, target = ds[i]
        assert image.shape[0] == 3 and target["boxes"].shape[0] == target["labels"].shape[0]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode)))
def test_any_json_bytes_are_loaded_or_a_data_error(tmp_path, raw):
    ann = tmp_path / "valid.json"
    ann.write_bytes(raw)
    with pytest.raises(DataError):
        load_coco(ann, tmp_path, check_files=True)  # nothing in 40 bytes is a valid split with its files


# ---------------------------------------------------------------- image bytes

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    mode = "P" if fmt == "GIF" else "RGB"
    Image.new("RGB", (12, 9), (30, 160, 90)).convert(mode).save(buf, format=fmt)
    return buf.getvalue()


ENCODED = {fmt: _encoded(fmt) for fmt in FORMATS}
image_bytes = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda fmt, cut: ENCODED[fmt][:cut], st.sampled_from(FORMATS), st.integers(0, 400)),
    st.builds(lambda fmt, flips: _flip(ENCODED[fmt], flips), st.sampled_from(FORMATS),
              st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6)),
)


def _flip(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, value in flips:
        out[pos % len(out)] = value
    return bytes(out)


@FEW
@given(raw=image_bytes, name=st.sampled_from(["x.png", "x.jpg", "x.tif", "x.webp", "x.gif", "x.bmp"]),
       budget=st.sampled_from([None, 50]))
def test_any_image_bytes_are_read_or_a_data_error(tmp_path, monkeypatch, raw, name, budget):
    monkeypatch.setattr(images, "BOMB_PIXELS", 4_000_000)  # a flipped header must not decode gigapixels here
    path = tmp_path / name
    path.write_bytes(raw)
    try:
        image = images.read_image(path, max_pixels=budget)
    except DataError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        return
    assert image.mode == "RGB" and (budget is None or image.width * image.height <= budget)


@FEW
@given(raw=image_bytes)
def test_batch_prediction_skips_any_bad_bytes_cleanly(tmp_path, monkeypatch, raw):
    monkeypatch.setattr(images, "BOMB_PIXELS", 4_000_000)
    folder = tmp_path / "f"
    folder.mkdir(exist_ok=True)
    (folder / "good.png").write_bytes(ENCODED["PNG"])
    (folder / "maybe.jpg").write_bytes(raw)
    ds = ImageFolder.from_folder(folder, max_pixels=200)
    assert [r.path.name for r in ds.records] == ["good.png", "maybe.jpg"]  # ids 1, 2 in name order
    items = [ds[i] for i in range(len(ds))]  # never raises: a bad file is (None, {'error'})
    assert items[0][0] is not None and items[0][0].shape == (3, 9, 12)
    failed = [t for im, t in items if im is None] + [{"error": r.error} for r in ds.records if r.error]
    assert len(failed) + sum(im is not None for im, _ in items) == 2
    assert all("maybe.jpg" in t["error"] and "\n" not in t["error"] for t in failed)


# ---------------------------------------------------------------- config overrides


@FEW
@given(key=st.one_of(st.sampled_from(["train.lr", "model.min_size", "model.anchor_sizes", "predict.max_pixels",
                                      "data.upsample", "model.backbone", "train.limit", "x", "train.", ".lr"]),
                     st.text(max_size=12)),
       value=st.one_of(st.text(max_size=12), st.sampled_from(["[1,", "{a: 1}", "null", "-1", "1e9", "[[8]]", "!!x"])))
def test_any_override_is_applied_or_a_config_error(key, value):
    try:
        load_config([], [f"{key}={value}"])
    except ConfigError as exc:
        assert str(exc) and isinstance(exc, DigitdetError)
