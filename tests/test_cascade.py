"""Whole-photo detection in one pass (reading.cascade): the finder view, the padded regions read at the
model's scale, the first view that reads wins, the whole image as the last resort; and reading.scan's
choice. A stand-in detector finds bright blobs and is sure of a digit only at the sizes a trained model
reads best (20-80 px tall: 0.99), unsure at 8-20 px (0.6), blind below; wide blobs are never sure."""

import pytest
import torch

import test_pyramid
from digitdet.config import load_config
from digitdet.reading import numbers
from digitdet.reading.cascade import CascadeDetector, CascadeSettings, padded_region, read_scale
from digitdet.reading.pyramid import PyramidDetector
from digitdet.reading.scan import for_inference


def reads_best_at_the_trained_sizes(height: int, width: int) -> float | None:
    if not 8 <= height <= 80:
        return None
    return 0.99 if height >= 20 and width <= 2 * height else 0.6


def blob_detector():
    return test_pyramid.BlobDetector(reads_best_at_the_trained_sizes)


def image_with(h, w, *boxes):
    im = torch.zeros(3, h, w)
    for x0, y0, x1, y1 in boxes:
        im[:, y0:y1, x0:x1] = 1.0
    return im


SETTINGS = CascadeSettings(read_thresh=0.9)


def read(det):
    c = numbers.read_candidates(det["boxes"], det["scores"], det["labels"], 0.9, 0.5, det["presence"])
    return c[0].number if c else None


def test_padded_region_and_read_scale():
    s = CascadeSettings()
    assert padded_region((100, 200, 140, 220), 1000, 1000, s) == (84, 194, 157, 227)  # 0.8 and 0.3 of 20 px
    assert padded_region((5, 2, 40, 25), 30, 45, s) == (0, 0, 45, 30)  # clipped to the image
    assert read_scale(44, 120, s) == pytest.approx(2.0)  # short side to 88
    assert read_scale(100, 1000, s) == pytest.approx(0.32)  # long side at most 320


def test_a_small_number_in_a_large_photo_is_read_in_its_region_at_the_models_scale():
    model = blob_detector()
    digits = [(600, 400, 606, 414), (610, 400, 616, 414)]  # "22", 14 px tall in a 1000 x 800 photo
    det = CascadeDetector(model, SETTINGS)([image_with(800, 1000, *digits)])[0]
    assert read(det) == "22"
    assert torch.allclose(det["boxes"], torch.tensor(digits, dtype=torch.float32), atol=1.0)  # input pixels
    assert det["presence"].min() >= 0.99
    # The finder at the photo's own size (long side <= 1024) and halved while over twice the whole view's size,
    # then the region at the model's scale; it reads, so the whole image is not run.
    assert model.seen[:3] == [(800, 1000), (400, 500), (200, 250)]
    assert len(model.seen) == 4 and min(model.seen[3]) == 88 and model.seen[3][1] <= 320


def test_the_finder_view_is_at_most_finder_long_and_never_enlarged():
    model = blob_detector()
    CascadeDetector(model, SETTINGS)([torch.zeros(3, 3000, 4000), torch.zeros(3, 60, 100)])
    # Nothing found: after its finder views, each whole image is read at the model's scale (short side 88).
    assert model.seen == [(768, 1024), (384, 512), (192, 256), (88, 117), (60, 100), (88, 147)]


def test_a_tight_crop_reads_in_the_first_region_and_the_whole_image_is_not_needed():
    model = blob_detector()
    digits = [(10, 10, 40, 60), (50, 10, 80, 60)]
    det = CascadeDetector(model, SETTINGS)([image_with(70, 90, *digits)])[0]
    assert read(det) == "22"
    assert torch.allclose(det["boxes"], torch.tensor(digits, dtype=torch.float32), atol=1.0)


def test_the_first_view_in_finder_rank_wins_over_a_surer_later_one():
    # A big number the finder ranks first (taller), small print it ranks second: the big one is read even
    # though each view reads with the same confidence.
    big = [(100, 100, 130, 150), (140, 100, 170, 150)]
    small = [(600, 500, 606, 512)]
    det = CascadeDetector(blob_detector(), SETTINGS)([image_with(700, 900, *big, *small)])[0]
    assert read(det) == "22"
    assert det["boxes"][:, 1].max() < 200  # only the big number's view


def test_when_no_view_reads_the_whole_image_detections_come_back():
    wide = (20, 20, 80, 40)  # a wide bar: found everywhere, never sure
    det = CascadeDetector(blob_detector(), SETTINGS)([image_with(60, 100, wide)])[0]
    assert read(det) is None
    assert len(det["boxes"]) == 1 and det["scores"][0] == pytest.approx(0.6)
    assert torch.allclose(det["boxes"][0], torch.tensor(wide, dtype=torch.float32), atol=1.0)


def test_empty_image_gives_empty_tensors():
    det = CascadeDetector(blob_detector(), SETTINGS)([torch.zeros(3, 50, 50)])[0]
    assert det["boxes"].shape == (0, 4) and det["presence"].shape == (0,) and det["labels"].dtype == torch.int64


def test_scan_picks_the_detector_and_old_configs_keep_their_meaning():
    model = blob_detector()
    assert load_config().predict.scan == "cascade"
    assert isinstance(for_inference(model, load_config()), CascadeDetector)
    assert isinstance(for_inference(model, load_config([], ["predict.scan=pyramid"])), PyramidDetector)
    assert for_inference(model, load_config([], ["predict.scan=single"])) is model
    # A checkpoint written before predict.scan says predict.pyramid: false for single scale.
    assert load_config(base={"predict": {"pyramid": False}}).predict.scan == "single"
    assert load_config(base={"predict": {"pyramid": True}}).predict.scan == "cascade"
    with pytest.raises(Exception, match="predict.scan: 'tiles' is not one of cascade, pyramid, single"):
        load_config([], ["predict.scan=tiles"])


def test_settings_follow_the_models_scale_and_reading_threshold():
    from digitdet.reading.cascade import settings_for

    cfg = load_config([], ["model.min_size=[64,96]", "model.max_size=400", "predict.read_thresh=0.8"])
    s = settings_for(cfg)
    assert (s.read_short, s.read_max, s.read_thresh) == (96, 400, 0.8)
