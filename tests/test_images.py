"""images.py: image modes, folders without a json, big photos, decompression bombs and unreadable files
(moved out of test_coco.py, which keeps the COCO layout, the dataset and check_dataset)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from digitdet.data.coco import list_images, read_image
from digitdet.data.images import fit_size, image_size
from digitdet.errors import DataError

# ---------------------------------------------------------------- image modes


def test_read_image_modes(tmp_path):
    gray = np.array([[0, 128], [200, 255]], dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    np.testing.assert_array_equal(np.asarray(read_image(tmp_path / "gray.png")), np.stack([gray] * 3, -1))

    # 16-bit grayscale: scaled by 1/257, so 65535 -> 255 and 257 * v -> v.
    deep = np.array([[0, 257 * 100], [257 * 200, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode.startswith("I")
    out = read_image(tmp_path / "deep.png")
    assert out.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(out)[..., 0], [[0, 100], [200, 255]])

    # RGBA: composited on white. Opaque red stays red, transparent becomes white, half alpha mixes.
    rgba = np.array([[[255, 0, 0, 255], [0, 0, 0, 0]], [[0, 0, 255, 128], [10, 20, 30, 255]]], np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    out = np.asarray(read_image(tmp_path / "rgba.png")).astype(int)
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [255, 255, 255]
    assert out[1, 1].tolist() == [10, 20, 30]
    assert abs(out[1, 0, 0] - 127) <= 1 and out[1, 0, 2] == 255

    # Palette, with and without a transparent index.
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    pal.save(tmp_path / "pal.png")
    assert np.asarray(read_image(tmp_path / "pal.png")).tolist() == [[[0, 0, 0], [10, 200, 30]]]
    pal.save(tmp_path / "pal_t.png", transparency=0)
    assert np.asarray(read_image(tmp_path / "pal_t.png")).tolist() == [[[255, 255, 255], [10, 200, 30]]]

    Image.fromarray(np.array([[True, False]])).save(tmp_path / "bw.png")
    assert np.asarray(read_image(tmp_path / "bw.png")).tolist() == [[[255] * 3, [0] * 3]]


# ---------------------------------------------------------------- folders without json


def test_list_images_any_names(tmp_path):
    for name in ("10.png", "2.jpg", "README.md", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert list_images(tmp_path) == [(2, tmp_path / "2.jpg"), (10, tmp_path / "10.png")]  # integer stems keep theirs
    for name in ("house.jpg", "IMG_0042.PNG", "house 12.jpg", "b.TIFF", "c.Webp", "007.jpeg", "-3.bmp"):
        (tmp_path / name).write_bytes(b"")
    # Others after the largest integer id, in name order; 007 spells 7 (free); -3 is a name, not an id.
    assert [(i, p.name) for i, p in list_images(tmp_path)] == [
        (2, "2.jpg"), (7, "007.jpeg"), (10, "10.png"), (11, "-3.bmp"), (12, "IMG_0042.PNG"), (13, "b.TIFF"),
        (14, "c.Webp"), (15, "house 12.jpg"), (16, "house.jpg")]
    only_names = tmp_path / "phone"
    only_names.mkdir()
    for name in ("b.jpg", "a.jpg", "7.png", "07.jpg"):
        (only_names / name).write_bytes(b"")
    assert [(i, p.name) for i, p in list_images(only_names)] == [(7, "07.jpg"), (8, "7.png"), (9, "a.jpg"),
                                                                 (10, "b.jpg")]  # never two files on one id


def test_list_images_errors(tmp_path):
    with pytest.raises(DataError, match="no images"):
        list_images(tmp_path)
    (tmp_path / "sub.jpg").mkdir()  # a folder named like an image is not one
    with pytest.raises(DataError, match="no images"):
        list_images(tmp_path)
    with pytest.raises(DataError, match="not found"):
        list_images(tmp_path / "missing")


def test_big_images_are_downscaled_while_loading(tmp_path, monkeypatch):
    arr = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "big.jpg")
    Image.fromarray(arr).save(tmp_path / "big.png")
    from PIL import JpegImagePlugin

    drafts = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = real_draft(self, mode, size)
        drafts.append((size, self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    for name in ("big.jpg", "big.png"):
        assert read_image(tmp_path / name).size == (400, 300)  # no budget: as it is
        small = read_image(tmp_path / name, max_pixels=10_000)
        assert small.mode == "RGB" and small.size == fit_size((400, 300), 10_000) == (115, 86)
        assert read_image(tmp_path / name, max_pixels=120_000).size == (400, 300)  # fits the budget
    assert drafts == [((115, 86), (200, 150))]  # the JPEG was decoded at 1/2 scale, never at full size
    assert image_size(tmp_path / "big.jpg") == (400, 300)


def _png_claiming(tmp_path, width: int, height: int):
    """A small PNG whose header claims width x height (no pixels are ever decoded in these tests)."""
    import struct
    import zlib

    path = tmp_path / f"{width}x{height}.png"
    Image.new("RGB", (2, 2)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    path.write_bytes(bytes(data))
    return path


def test_decompression_bombs_are_refused_before_decoding(tmp_path):
    from digitdet.data import images

    assert Image.MAX_IMAGE_PIXELS == images.BOMB_PIXELS == 200_000_000  # a 108 MP photo is not a bomb
    assert image_size(_png_claiming(tmp_path, 12000, 9000)) == (12000, 9000)
    for w, h in ((15000, 15000), (40000, 40000)):  # over our limit; over PIL's own (2x) limit
        with pytest.raises(DataError, match=rf"{w}x{h}.png: .*(decompression bomb|DecompressionBombError)"):
            read_image(_png_claiming(tmp_path, w, h))
        with pytest.raises(DataError, match="bomb"):
            image_size(_png_claiming(tmp_path, w, h))


def test_unreadable_files_say_why(tmp_path, monkeypatch):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not a photo\n")
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "ok.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "ok.jpg").read_bytes()[:300])
    for name, reason in (("empty.png", r"cannot decode image \(empty file"),
                         ("notes.jpg", r".*\(not an image file"),
                         ("cut.jpg", r"cannot decode image \((image file is truncated|Truncated File Read)"),
                         ("none.png", "image file not found")):
        with pytest.raises(DataError, match=rf"{name}: {reason}"):
            read_image(tmp_path / name)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", denied)  # chmod 000 does not stop root, who runs some CI
    with pytest.raises(DataError, match=r"ok\.jpg: cannot read the file \(permission denied\)"):
        read_image(tmp_path / "ok.jpg")


# ---------------------------------------------------------------- what is decoded, and how (open_image, load_rgb)


def test_only_listed_formats_no_bombs_no_strips(tmp_path):
    """The formats of IMAGE_SUFFIXES only; a file claiming far more pixels than its bytes can hold (over
    4 MP) is a bomb; sides beyond 20:1 are no photo. Each refused from the header, in one line."""
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png", "PPM")  # PIL reads it, digitdet lists no .ppm
    with pytest.raises(DataError, match=r"x\.png: cannot decode image \(not an image file, or not one of PNG, JPEG"):
        read_image(tmp_path / "x.png")
    Image.new("1", (2100, 2000)).save(tmp_path / "bomb.png")  # 4.2 MP in ~600 bytes
    with pytest.raises(DataError, match=r"bomb\.png: 2100x2000 pixels \(4\.2 MP\) in [\d,]+ bytes, [\d,]+ pixels "
                                        r"per byte, over the limit of 1,000 for an image over 4 MP"):
        read_image(tmp_path / "bomb.png", max_pixels=10_000)
    noise = np.random.default_rng(0).integers(0, 2, (2000, 2100)).astype(bool)
    Image.fromarray(noise).save(tmp_path / "noise.png")  # the same size with real content: read
    assert read_image(tmp_path / "noise.png", max_pixels=10_000).size == fit_size((2100, 2000), 10_000)
    Image.new("L", (30000, 1)).save(tmp_path / "strip.png")
    with pytest.raises(DataError, match=r"strip\.png: 30000x1 pixels, sides 30000:1, beyond the 20:1 limit"):
        read_image(tmp_path / "strip.png")
    Image.new("L", (1, 20)).save(tmp_path / "tall.png")
    assert read_image(tmp_path / "tall.png").size == (1, 20)  # 20:1 is allowed


def test_narrow_modes_shrink_before_rgb(tmp_path, monkeypatch):
    """Over the budget, a 1-bit, gray or 16-bit image is resized in a 1-byte mode and becomes RGB only at
    the target size; 16-bit becomes 8-bit in integers, a band at a time: never a float64 copy."""
    import tracemalloc

    rgb_sizes = []
    real_convert = Image.Image.convert

    def spy(self, mode=None, *args, **kwargs):
        if mode == "RGB":
            rgb_sizes.append(self.size)
        return real_convert(self, mode, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", spy)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 2, (600, 800)).astype(bool)).save(tmp_path / "bw.png")
    Image.fromarray(rng.integers(0, 256, (600, 800), dtype=np.uint8)).save(tmp_path / "gray.png")
    deep = (np.arange(2000, dtype=np.uint16)[None, :] * 32 + np.arange(1000, dtype=np.uint16)[:, None])
    Image.fromarray(deep).save(tmp_path / "deep.png")  # 2000x1000, 16-bit
    for name, size in (("bw.png", (800, 600)), ("gray.png", (800, 600)), ("deep.png", (2000, 1000))):
        rgb_sizes.clear()
        tracemalloc.start()
        out = read_image(tmp_path / name, max_pixels=10_000)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert out.mode == "RGB" and out.size == fit_size(size, 10_000) and rgb_sizes == [out.size], name
        assert peak < size[0] * size[1] * 8 / 2, (name, peak)  # less than half a float64 copy of the image
    full = np.asarray(read_image(tmp_path / "deep.png"))[..., 0]  # whole: round(x / 257) exactly
    np.testing.assert_array_equal(full, np.clip(np.rint(deep / 257.0), 0, 255).astype(np.uint8))
