"""The synthetic house-number generator: determinism, tight boxes, COCO schema, statistics, preview."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitdet.data.synth import (
    MODES,
    PREVIEW_CELL,
    SYNTH_FORMAT,
    generate_dataset,
    parse_modes,
    render_sample,
    sample_rng,
    write_preview,
)
from digitdet.data.synth.modes import pick_mode, render_mode
from digitdet.data.synth.render import letter_suffixes
from digitdet.errors import DataError

COUNTS = {"train": 10, "valid": 4, "test": 3}


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def samples():
    return [render_sample(sample_rng(3, 0, i)) for i in range(1, 121)]


# 64 images in all: the smallest dataset generate_dataset renders in a worker pool when workers > 1
# (fewer run inline whatever `workers` says). Three splits, so the pool's chunks of 8 cross split borders.
POOL_COUNTS = {"train": 36, "valid": 17, "test": 11}


def test_same_seed_same_bytes_any_workers(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    stats = generate_dataset(a, POOL_COUNTS, seed=5, workers=1, progress=False)  # inline
    generate_dataset(b, POOL_COUNTS, seed=5, workers=2, progress=False)  # worker pool
    generate_dataset(c, POOL_COUNTS, seed=6, workers=2, progress=False)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert len(da) > 64 and da == db  # every PNG and every COCO json byte-identical
    assert set(da) == set(dc) and da != dc
    assert stats["images"] == 64 and stats["boxes"] > 64 and stats["images_per_s"] > 0


def test_pool_path_matches_inline(tmp_path):
    # >= 64 images goes through the worker pool; the first images must equal an inline render.
    generate_dataset(tmp_path / "p", {"train": 64}, seed=2, workers=2, progress=False)
    for i in (1, 33, 64):
        s = render_sample(sample_rng(2, 0, i))
        on_disk = np.asarray(Image.open(tmp_path / "p" / "train" / f"{i}.png").convert("RGB"))
        assert np.array_equal(on_disk, np.asarray(s.image))


def test_layout_and_coco_schema(tmp_path):
    out = tmp_path / "ds"
    generate_dataset(out, {"train": 6, "valid": 0, "test": 2}, seed=1, workers=1, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["digitdet-synth.json", "test", "test.json", "train",
                                                     "train.json"]
    assert not list(tmp_path.glob(".ds.*")), "temp folder left behind"
    marker = json.loads((out / "digitdet-synth.json").read_text())
    assert marker["seed"] == 1 and marker["counts"] == {"train": 6, "valid": 0, "test": 2}
    assert len(marker["textures"]) == 13 and "brick" in marker["textures"] and marker["fonts"]
    for split, n in (("train", 6), ("test", 2)):
        coco = json.loads((out / f"{split}.json").read_text())
        assert set(coco) >= {"images", "annotations", "categories"}
        assert coco["categories"] == [{"id": d + 1, "name": str(d)} for d in range(10)]
        assert [im["id"] for im in coco["images"]] == list(range(1, n + 1))
        assert sorted(p.name for p in (out / split).iterdir()) == sorted(f"{i}.png" for i in range(1, n + 1))
        sizes = {}
        for im in coco["images"]:
            assert set(im) == {"id", "file_name", "width", "height"}
            assert im["file_name"] == f"{im['id']}.png"
            with Image.open(out / split / im["file_name"]) as f:
                assert f.size == (im["width"], im["height"]) and f.mode == "RGB"
            sizes[im["id"]] = (im["width"], im["height"])
        ids = [a["id"] for a in coco["annotations"]]
        assert ids == list(range(1, len(ids) + 1))
        for a in coco["annotations"]:
            assert set(a) == {"id", "image_id", "category_id", "bbox", "area", "iscrowd"}
            assert 1 <= a["category_id"] <= 10 and a["iscrowd"] == 0
            x, y, w, h = a["bbox"]
            assert all(isinstance(v, float) for v in a["bbox"])
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            W, H = sizes[a["image_id"]]
            assert x + w <= W and y + h <= H
            assert a["area"] == pytest.approx(w * h)


def test_lookalikes_are_written_tight_inside_and_apart_from_the_digits(tmp_path):
    # Crop-mode images 1-200 of seed 0, split 1 (the demo's valid split) hold 23 lookalikes in 22 images.
    rendered = [render_sample(sample_rng(0, 1, i)) for i in range(1, 41)]
    with_looks = [s for s in rendered if s.lookalikes]
    assert len(with_looks) >= 2
    for s in with_looks:
        W, H = s.image.size
        for x0, y0, x1, y1 in s.lookalikes:
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H and x1 - x0 >= 2 and y1 - y0 >= 2
            for b in s.boxes:  # never a digit's own box
                assert [x0, y0, x1, y1] != b
    out = tmp_path / "ds"
    generate_dataset(out, {"train": 0, "valid": 40, "test": 0}, seed=0, workers=1, progress=False)
    coco = json.loads((out / "valid.json").read_text())
    written = [(lk["image_id"], lk["bbox"]) for lk in coco["lookalikes"]]
    assert written == [(i, [b[0], b[1], b[2] - b[0], b[3] - b[1]])
                       for i, s in enumerate(rendered, start=1) for b in s.lookalikes]
    assert json.loads((out / "digitdet-synth.json").read_text())["format"] == SYNTH_FORMAT


def test_a_letter_after_the_number_is_a_lookalike_not_a_digit():
    # Valid image 53 of seed 0 is "8F" (the demo model once read it "85"): the F is a lookalike.
    s = render_sample(sample_rng(0, 1, 53))
    assert s.labels == [8] and len(s.lookalikes) == 1
    (dx0, _, dx1, _), (lx0, _, lx1, _) = s.boxes[0], s.lookalikes[0]
    assert lx0 >= dx1 - 1 and lx1 - lx0 > 0.5 * (dx1 - dx0)  # right of the 8, about as wide


def test_bad_arguments(tmp_path):
    with pytest.raises(DataError):
        generate_dataset(tmp_path / "x", {"training": 3}, progress=False)
    with pytest.raises(DataError):
        generate_dataset(tmp_path / "x", {"train": -1}, progress=False)
    assert not (tmp_path / "x").exists()


def _check_boxes(s) -> None:
    """Every box is inside the image and tight on its digit's final-resolution mask."""
    W, H = s.image.size
    assert len(s.boxes) == len(s.labels) == len(s.masks)
    for (x0, y0, x1, y1), lab, m in zip(s.boxes, s.labels, s.masks):
        assert 0 <= lab <= 9
        assert m.shape == (H, W) and m.dtype == bool
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
        x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
        assert m[:, x0].any() and m[:, x1 - 1].any() and m[y0, :].any() and m[y1 - 1, :].any()
        assert not m[:, :x0].any() and not m[:, x1:].any() and not m[:y0].any() and not m[y1:].any()


def test_boxes_tight_on_masks_and_inside(samples):
    for s in samples:
        _check_boxes(s)


def test_statistics_like_svhn(samples):
    counts = Counter(len(s.boxes) for s in samples)
    n = len(samples)
    assert 0.08 < counts[1] / n < 0.35
    assert 0.45 < counts[2] / n < 0.8
    assert 0.05 < counts[3] / n < 0.3
    assert counts[0] / n < 0.03 and sum(counts[k] for k in (4, 5, 6)) / n < 0.06
    hs = np.array([b[3] - b[1] for s in samples for b in s.boxes])
    ratios = np.array([(b[2] - b[0]) / (b[3] - b[1]) for s in samples for b in s.boxes])
    assert 18 <= np.median(hs) <= 32 and np.percentile(hs, 5) >= 9
    assert 0.45 <= np.median(ratios) <= 0.7
    heights = np.array([s.image.height for s in samples])
    assert heights.min() >= 8 and heights.max() <= 330
    assert len({s.image.size for s in samples}) > len(samples) // 2


def test_render_is_deterministic():
    a, b = render_sample(sample_rng(9, 1, 4)), render_sample(sample_rng(9, 1, 4))
    assert a.boxes == b.boxes and a.labels == b.labels
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_preview_size(tmp_path):
    p = tmp_path / "prev.png"
    write_preview(p, n=10, seed=0, cols=4)
    with Image.open(p) as im:
        assert im.size == (4 * PREVIEW_CELL[0], 3 * PREVIEW_CELL[1])


def test_a_texture_that_fails_to_load_is_an_error_not_a_different_dataset(tmp_path, monkeypatch):
    import skimage.data

    from digitdet.data.synth import style as synth_style

    def broken():
        raise OSError("file missing from the wheel")

    monkeypatch.setattr(skimage.data, "brick", broken)
    synth_style.textures.cache_clear()
    try:
        with pytest.raises(DataError, match=r"skimage\.data\.brick could not be loaded \(file missing"):
            synth_style.textures()
        with pytest.raises(DataError, match="brick"):
            generate_dataset(tmp_path / "ds", {"train": 2}, seed=0, workers=1, progress=False)
        assert not (tmp_path / "ds").exists()
    finally:
        synth_style.textures.cache_clear()
    monkeypatch.undo()
    assert len(synth_style.textures()) == len(synth_style.TEXTURE_NAMES)


def test_generating_into_a_users_folder_is_refused_and_leaves_it_untouched(tmp_path):
    folder = tmp_path / "mine"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "1.png").write_bytes(b"real photo")
    (folder / "train.json").write_text("{}")
    with pytest.raises(DataError, match=r"not empty \(train, train\.json\).*refusing"):
        generate_dataset(folder, {"train": 2}, seed=0, workers=1, progress=False)
    assert (folder / "train" / "1.png").read_bytes() == b"real photo" and (folder / "train.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"], "temp folder left behind"


# ---------------------------------------------------------------- modes (tight, plaque, scene) and mixing

NEW_MODES = ("tight", "plaque", "scene")


@pytest.fixture(scope="module")
def mode_samples():
    return {m: [render_mode(sample_rng(7, 0, i), m) for i in range(1, 25)] for m in NEW_MODES}


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_renders_deterministically(mode):
    a, b = render_mode(sample_rng(4, 0, 2), mode), render_mode(sample_rng(4, 0, 2), mode)
    assert a.boxes == b.boxes and a.labels == b.labels and a.boxes
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert all(np.array_equal(x, y) for x, y in zip(a.masks, b.masks))


def test_crop_mode_is_render_sample():
    a, b = render_mode(sample_rng(3, 1, 5), "crop"), render_sample(sample_rng(3, 1, 5))
    assert a.boxes == b.boxes and np.array_equal(np.asarray(a.image), np.asarray(b.image))


@pytest.mark.parametrize("mode", NEW_MODES)
def test_mode_boxes_tight_on_masks_and_inside(mode_samples, mode):
    samples = mode_samples[mode]
    for s in samples:
        assert s.boxes, "every image holds at least one boxed digit"
        _check_boxes(s)
    assert len({s.image.size for s in samples}) > len(samples) // 2


def test_tight_digits_fill_the_height(mode_samples):
    uncut = 0
    for s in mode_samples["tight"]:
        W, H = s.image.size
        assert max(W, H) <= 320 and H >= 32
        for x0, y0, x1, y1 in s.boxes:
            if x0 > 0 and x1 < W:  # not cut by the left/right border
                uncut += 1
                assert (y1 - y0) / H >= 0.6
            assert (y1 - y0) / H <= 0.97
    assert uncut >= 20


def test_plaque_digits_are_a_large_part_of_the_frame(mode_samples):
    for s in mode_samples["plaque"]:
        W, H = s.image.size
        assert max(W, H) <= 320 and min(W, H) >= 50
        assert all(0.2 <= (b[3] - b[1]) / H <= 0.8 for b in s.boxes)


def test_scene_digits_are_small(mode_samples):
    for s in mode_samples["scene"]:
        W, H = s.image.size
        assert 115 <= min(W, H) <= 245 and max(W, H) <= 400
        assert all(0.08 <= (b[3] - b[1]) / H <= 0.36 for b in s.boxes)


def windows_recorded(monkeypatch) -> list:
    """The window lookalikes compose.finish lists from here on (recorded as plane_box_in_image gives them)."""
    from digitdet.data.synth import compose

    seen, real = [], compose.plane_box_in_image

    def record(*args, **kwargs):
        b = real(*args, **kwargs)
        seen.append(b)
        return b
    monkeypatch.setattr(compose, "plane_box_in_image", record)
    return seen


@pytest.mark.parametrize("mode", NEW_MODES)
def test_a_letter_suffix_is_a_lookalike_in_every_mode(mode, monkeypatch):
    """With a letter after every number (render.letter_suffixes, `digitdet synth --letters 1`), most renders
    list it as a lookalike: a whole glyph about as tall as the digits, right of the number's first digit,
    not an edge sliver. Without letters these modes list none but windows (a digit is never a lookalike).
    Mutations: drop `looks.append(b)` in synth_compose.finish; ignore the rate in render.number_chars."""
    whole = 0
    windows = windows_recorded(monkeypatch)
    for i in range(1, 9):
        with letter_suffixes(1.0):
            s = render_mode(sample_rng(11, 0, i), mode)
        W, H = s.image.size
        letters = [b for b in s.lookalikes if b not in windows]
        assert len(letters) <= 1  # the letter; never a digit
        for x0, y0, x1, y1 in letters:
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H and [x0, y0, x1, y1] not in s.boxes
            digit_h = float(np.median([b[3] - b[1] for b in s.boxes]))
            inside = x0 > 0 and y0 > 0 and x1 < W and y1 < H
            whole += inside and y1 - y0 >= 0.4 * digit_h and x0 > min(b[0] for b in s.boxes)
    assert whole >= 5, f"{mode}: {whole} of 8 renders list their letter as a whole-glyph lookalike"
    with letter_suffixes(0.0):
        renders = [render_mode(sample_rng(11, 0, i), mode) for i in range(1, 5)]
        assert not any(b not in windows for s in renders for b in s.lookalikes)


def test_letters_option_is_recorded_and_a_bad_one_is_one_clear_error(tmp_path):
    """generate_dataset(letters=1): every tight image lists its letter; the marker records the chance; out of
    [0, 1] is a DataError before anything is written. Mutation: drop `letters` from the render tasks."""
    out = tmp_path / "a"
    generate_dataset(out, {"train": 12}, seed=5, workers=1, progress=False, modes={"tight": 1}, letters=1.0)
    coco = json.loads((out / "train.json").read_text())
    assert len({look["image_id"] for look in coco["lookalikes"]}) >= 9
    assert json.loads((out / "digitdet-synth.json").read_text())["letters"] == 1.0
    for bad in (1.5, -0.1, True, "0.3"):
        with pytest.raises(DataError, match="letter suffix"):
            generate_dataset(tmp_path / "b", {"train": 2}, seed=5, workers=1, progress=False, letters=bad)
    assert not (tmp_path / "b").exists()


def test_pick_mode_draws_only_when_several_modes_have_weight():
    for modes in (None, {"crop": 1.0}, {"scene": 2.0, "tight": 0.0}):
        rng = sample_rng(0, 0, 1)
        pick_mode(rng, modes)
        assert rng.random() == sample_rng(0, 0, 1).random(), "nothing drawn for a single mode"
    picked = Counter(pick_mode(sample_rng(0, 0, i), {"crop": 1, "plaque": 3}) for i in range(1, 401))
    assert set(picked) == {"crop", "plaque"} and 0.65 < picked["plaque"] / 400 < 0.85


MIX = {"crop": 0.4, "tight": 0.2, "plaque": 0.2, "scene": 0.2}


def test_modes_mix_same_bytes_any_workers_and_recorded(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_dataset(a, POOL_COUNTS, seed=5, workers=1, progress=False, modes=MIX)  # inline
    generate_dataset(b, POOL_COUNTS, seed=5, workers=2, progress=False, modes=MIX)  # worker pool
    assert _digest(a) == _digest(b)
    assert json.loads((a / "digitdet-synth.json").read_text())["modes"] == MIX
    sizes = {im["height"] for im in json.loads((a / "train.json").read_text())["images"]}
    assert max(sizes) > 120, "the mix holds scene images, larger than any crop"


def test_no_modes_is_crop_alone_byte_for_byte(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_dataset(a, {"train": 5, "test": 2}, seed=3, workers=1, progress=False)
    generate_dataset(b, {"train": 5, "test": 2}, seed=3, workers=1, progress=False, modes={"crop": 1})
    assert _digest(a) == _digest(b)
    assert json.loads((a / "digitdet-synth.json").read_text())["modes"] == {"crop": 1.0}
    on_disk = np.asarray(Image.open(a / "train" / "4.png").convert("RGB"))
    assert np.array_equal(on_disk, np.asarray(render_sample(sample_rng(3, 0, 4)).image))


def test_parse_modes():
    assert parse_modes("crop=0.4, tight=0.2,plaque=0.2,scene=0.2") == MIX
    assert parse_modes("scene=1") == {"scene": 1.0}


@pytest.mark.parametrize("text", ["crop=0.5,foo=1", "crop=-1", "crop=abc", "crop=0,tight=0", "crop", "",
                                  "crop=1,crop=2", "tight=nan"])
def test_bad_modes_string_is_one_clear_error(text):
    with pytest.raises(DataError, match="known modes: crop, tight, plaque, scene") as e:
        parse_modes(text)
    assert "\n" not in str(e.value)


def test_bad_modes_leave_nothing_behind(tmp_path):
    with pytest.raises(DataError, match="unknown mode 'bogus'"):
        generate_dataset(tmp_path / "x", {"train": 2}, progress=False, modes={"bogus": 1.0})
    with pytest.raises(DataError, match="known modes"):
        write_preview(tmp_path / "p.png", n=2, modes={"crop": True})
    assert not list(tmp_path.iterdir())


def test_cli_preview_of_one_mode_and_bad_modes(tmp_path, capsys):
    from digitdet.cli import main

    p = tmp_path / "scene.png"
    assert main(["synth", "--preview", str(p), "--modes", "scene=1", "--preview-n", "3"]) == 0
    with Image.open(p) as im:
        assert im.size == (3 * PREVIEW_CELL[0], PREVIEW_CELL[1])
    assert main(["synth", "--preview", str(tmp_path / "q.png"), "--modes", "crop=1,wall=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown mode 'wall'" in err and "known modes: crop, tight, plaque, scene" in err
    assert not (tmp_path / "q.png").exists()
