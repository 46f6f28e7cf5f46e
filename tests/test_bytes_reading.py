"""Reading a photo held as bytes (reading.pyramid.as_float, reading.scan.takes_bytes, ToTensor keep_bytes):
the cascade and pyramid scans make each view float themselves, so the Reader hands them the uint8 image
(a 4 MP photo: 12 MB, not 48) and every view, and so every detection, is the one the float image gives,
bit for bit."""

import numpy as np
import pytest
import torch
from PIL import Image

import test_cascade
from digitdet.data.synth import sample_rng
from digitdet.data.synth import style as synth_style
from digitdet.data.synth.modes import render_mode
from digitdet.data.transforms import ToTensor
from digitdet.reading.cascade import CascadeDetector, CascadeSettings
from digitdet.reading.pyramid import PyramidDetector, _resize, as_float
from digitdet.reading.reader import Reader
from digitdet.reading.scan import takes_bytes

EMPTY = {"boxes": [], "labels": []}


def noisy_bytes(h, w, seed=0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, h, w), dtype=np.uint8))


def test_bytes_become_the_float_image_that_to_tensor_makes_and_views_of_them_the_same_views():
    u8 = noisy_bytes(61, 87)
    image = Image.fromarray(u8.permute(1, 2, 0).numpy())
    floats, _ = ToTensor()(image, EMPTY)
    assert as_float(u8).dtype == torch.float32 and torch.equal(as_float(u8), floats)
    assert as_float(floats) is floats  # a float image as it is
    kept, _ = ToTensor(keep_bytes=True)(image, EMPTY)
    assert kept.dtype == torch.uint8 and torch.equal(kept, u8)
    assert ToTensor(for_augment=True, keep_bytes=True)(image, EMPTY)[0].dtype == torch.float32  # training: float
    for scale in (0.37, 1.0, 1.8):  # shrunk (antialiased), as is, enlarged; a crop as the cascade cuts one
        assert torch.equal(_resize(u8[:, 5:50, 9:70], scale), _resize(floats[:, 5:50, 9:70], scale))


@pytest.mark.parametrize("scan", ["cascade", "pyramid"])
def test_a_scan_detects_the_same_boxes_in_the_bytes_as_in_the_float_image(scan):
    u8 = noisy_bytes(700, 900, seed=1) // 3  # dim noise under the bright blobs: below the stand-in's 0.5
    for x0, y0, x1, y1 in ((400, 300, 412, 330), (416, 300, 428, 330), (100, 600, 160, 690)):
        u8[:, y0:y1, x0:x1] = 255
    blobs = test_cascade.blob_detector()  # sure of 20-80 px blobs
    detector = (CascadeDetector(blobs, CascadeSettings(read_thresh=0.9)) if scan == "cascade" else
                PyramidDetector(blobs))
    from_float, from_bytes = detector([as_float(u8)])[0], detector([u8])[0]
    assert len(from_float["boxes"]) > 0
    for k in ("boxes", "scores", "labels", "presence"):
        assert torch.equal(from_bytes[k], from_float[k]), k


@pytest.fixture(scope="module")
def reader():
    return Reader()


def test_the_bundled_reader_takes_bytes_and_reads_them_as_the_float_image(reader):
    assert takes_bytes(reader.detector)
    assert not takes_bytes(Reader(scan="single").detector)  # the model alone normalizes what it is given
    wall = synth_style.textures()[0].convert("RGB").resize((1100, 800))
    plaque = render_mode(sample_rng(0, 9, 1), "plaque").image
    wall.paste(plaque.resize((plaque.width * 90 // plaque.height, 90)), (600, 350))
    tight = render_mode(sample_rng(0, 9, 2), "tight").image  # a close-up: both readers of the pair run
    for image in (wall, tight):
        tensor = reader._tensor(image)
        assert tensor.dtype == torch.uint8 and tensor.shape == (3, image.height, image.width)
        got = reader.detect(image)
        with torch.inference_mode():
            want = reader.detector([ToTensor()(image, EMPTY)[0]])[0]
        assert len(got["boxes"]) > 0
        assert torch.equal(got["boxes"], want["boxes"].float()) and torch.equal(got["scores"], want["scores"])


def test_a_large_photo_gets_its_finder_views_from_its_bytes_and_never_whole_in_float(monkeypatch):
    """Over finder_long the finder views are shrunk from the bytes and only the views are made float (a 12 MP
    photo is never 144 MB of floats); the float image of the same bytes gives the same views, bit for bit;
    within finder_long the views are the float image's, as before. Mutations: the large photo made float
    whole first; a float image shrunk as floats (not rounded to its bytes)."""
    import digitdet.reading.cascade as cascade

    u8 = noisy_bytes(1100, 1300, seed=3)
    s = CascadeSettings()
    scales = cascade.finder_scales(1100, 1300, s)
    assert scales[0] < 1  # over finder_long (1024)
    made_float = []
    real = cascade.as_float
    monkeypatch.setattr(cascade, "as_float", lambda x: made_float.append(tuple(x.shape)) or real(x))
    views = cascade.finder_views(u8, scales)
    assert (3, 1100, 1300) not in made_float and made_float == [tuple(v.shape) for v in views]
    assert [v.shape[-1] for v in views] == [1024, 512, 256] and views[0].dtype == torch.float32
    from_float = cascade.finder_views(as_float(u8), scales)
    assert all(torch.equal(a, b) for a, b in zip(views, from_float))
    small = u8[:, :700, :900]  # within finder_long: the float image's own views
    small_scales = cascade.finder_scales(700, 900, s)
    got = cascade.finder_views(small, small_scales)
    assert all(torch.equal(a, _resize(as_float(small), k)) for a, k in zip(got, small_scales))
