"""reading.routing: the bundled reader's whole-photo reader hands close-ups to its close-up reader, whose
scores come back on the whole-photo reader's scale (stand-in detectors: no model needed), and the shipped
pair is what Reader(), predict and the Ray engine load."""

import pytest
import torch

import test_pyramid
from digitdet.model.inference import BandedStem
from digitdet.reading import numbers
from digitdet.reading.routing import ReaderPair, RoutedDetector, RouteSettings, to_whole_scale

S = RouteSettings(close_frac=0.35, whole_thresh=0.98, close_thresh=0.85, dedup_iou=0.3)


class Fixed(torch.nn.Module):
    """A close-up reader stand-in: the same detections for every image ('1' at 0.86, '2' at 0.84 and a
    '7' under the '2' at 0.10: the '2' glyph's presence is 0.94); counts its calls."""

    def __init__(self, presence=False):
        super().__init__()
        self.calls, self.presence = 0, presence

    def forward(self, images):
        self.calls += len(images)
        det = {"boxes": torch.tensor([[10.0, 10, 30, 60], [35, 10, 55, 60], [35, 10, 55, 61]]),
               "scores": torch.tensor([0.86, 0.84, 0.10]), "labels": torch.tensor([2, 3, 8])}
        if self.presence:
            det["presence"] = numbers.presence_scores(det["boxes"], det["scores"], det["labels"], 0.3)
        return [det for _ in images]


def whole_reader(score=0.99):
    return test_pyramid.BlobDetector(lambda h, w: score)


@pytest.mark.parametrize("close, whole", [(0.85, 0.98), (0.9, 0.5), (0.65, 0.98)])
def test_the_map_takes_the_close_threshold_to_the_whole_one_and_keeps_order(close, whole):
    x = torch.linspace(0, 1, 1001)
    y = to_whole_scale(x, close, whole)
    assert y[0] == 0 and y[-1] == pytest.approx(1.0)
    assert float(to_whole_scale(torch.tensor([close]), close, whole)) == pytest.approx(whole)
    assert bool((y[1:] > y[:-1]).all())  # strictly increasing: the same order
    assert torch.equal(x.double() >= close, y.double() >= whole)  # as reading.numbers compares: float(p) >= t
    at = torch.tensor(close, dtype=torch.float32)
    for direction in (-1.0, 2.0):  # the float32 neighbours of the threshold, to the last bit
        v = at
        for _ in range(50):
            v = torch.nextafter(v, torch.tensor(direction))
            assert (float(v) >= close) == (float(to_whole_scale(v.reshape(1), close, whole)) >= whole), float(v)
    assert torch.equal(to_whole_scale(x, 0.7, 0.7), x)


def test_a_small_number_stays_with_the_whole_photo_reader():
    close = Fixed()
    router = RoutedDetector(whole_reader(), close, S)
    image = test_pyramid.image_with_blob(300, 400, (100, 100, 130, 140))  # 40 px of 300: 0.13 < 0.35
    det = router([image])[0]
    assert det["reader"] == "whole" and close.calls == 0
    assert det["boxes"].tolist() == [[100.0, 100.0, 130.0, 140.0]] and det["scores"].tolist() == [pytest.approx(0.99)]


def test_a_tall_digit_read_below_threshold_goes_to_the_close_up_reader_a_short_or_faint_one_stays():
    """The whole-photo reader reads nothing (0.9 < 0.98) in either photo: a tall unsure digit (80 px of 100)
    makes the photo a close-up, a short one (30 px) does not, nor a tall one at a score under tall_score
    (0.2 < 0.3: a window frame or brick edge) beside a short sure one. Mutations: route on the best number's
    height alone in routing.close_up_height (the tall one stays whole); drop the score floor (the faint one
    goes to the close-up reader)."""
    close = Fixed()
    tall = test_pyramid.image_with_blob(100, 100, (10, 10, 60, 90))
    assert RoutedDetector(whole_reader(0.9), close, S)([tall])[0]["reader"] == "close" and close.calls == 1
    short = test_pyramid.image_with_blob(100, 100, (10, 10, 40, 40))
    assert RoutedDetector(whole_reader(0.9), close, S)([short])[0]["reader"] == "whole" and close.calls == 1
    assert S.tall_score == 0.3
    faint = tall.clone()
    faint[:, 10:30, 70:90] = 1.0  # beside it a short sure digit (20 px, 0.99: read, but not a close-up)
    whole = test_pyramid.BlobDetector(lambda h, w: 0.2 if h > 50 else 0.99)
    det = RoutedDetector(whole, close, S)([faint])[0]
    assert det["reader"] == "whole" and close.calls == 1 and len(det["boxes"]) == 2


@pytest.mark.parametrize("measured", [False, True])
def test_a_close_up_is_read_by_the_close_up_reader_at_its_own_threshold(measured):
    """The close-up reader keeps '1' (0.86) and the '2' glyph (0.84 + 0.10 under it = 0.94) at its 0.85 and
    would drop a 0.84 alone: read at the caller's 0.98 the routed detections say the same."""
    close = Fixed(presence=measured)
    image = test_pyramid.image_with_blob(100, 100, (10, 10, 60, 46))  # 36 px of 100: 0.36 >= 0.35
    det = RoutedDetector(whole_reader(), close, S)([image])[0]
    assert det["reader"] == "close" and close.calls == 1
    raw = close([image])[0]
    assert numbers.read_number(raw["boxes"], raw["scores"], raw["labels"], 0.85, 0.3) == "12"
    assert numbers.read_number(det["boxes"], det["scores"], det["labels"], 0.98, 0.3, det["presence"]) == "12"
    assert numbers.read_number(raw["boxes"][:2], raw["scores"][:2], raw["labels"][:2], 0.85, 0.3) == "1"  # no '7'
    assert det["scores"][0] == pytest.approx(0.98 + 0.01 * 0.02 / 0.15) and det["scores"][1] < 0.98
    assert det["presence"][1] == pytest.approx(float(to_whole_scale(torch.tensor([0.94]), 0.85, 0.98)))


def test_each_reader_of_the_pair_reads_at_its_own_packed_threshold(monkeypatch):
    """A close-up reader packed at another threshold than the whole-photo reader's (0.90 since the
    afternoon of 2026-12-05) keeps it, and the routing maps it onto the whole-photo reader's. Mutation: the
    close-up reader loaded with the whole-photo reader's config (close_cfg = cfg) reads 0.9 here."""
    import digitdet.reading.reader as reader_module
    from digitdet.model.packed import BUNDLED_CLOSE_READER, load_packed

    def packed_at(path):
        packed = load_packed(path)
        return {**packed, "read_thresh": 0.6} if path.stem == BUNDLED_CLOSE_READER else packed

    monkeypatch.setattr(reader_module, "load_packed", packed_at)
    cfg, pair = reader_module.load_model()
    assert (cfg.predict.read_thresh, pair.close_cfg.predict.read_thresh) == (0.9, 0.6)
    reader = reader_module.Reader()
    assert (reader.detector.settings.whole_thresh, reader.detector.settings.close_thresh) == (0.9, 0.6)


def test_the_bundled_reader_is_the_pair_and_close_frac_null_is_the_first_alone():
    from digitdet.model.line import LineReader
    from digitdet.model.packed import (
        BUNDLED_CLOSE_READER,
        BUNDLED_LINE_READER,
        BUNDLED_READER,
        bundled_reader_path,
        load_packed,
    )
    from digitdet.reading.reader import Reader, load_model

    cfg, pair = load_model()
    assert isinstance(pair, ReaderPair) and cfg.predict.close_frac == 0.35
    # each reads at its own packed file's tuned threshold (whole 0.90 and close 0.85 since 2026-12-05; v1 had 0.98)
    whole_t, close_t = (load_packed(bundled_reader_path(n))["read_thresh"]
                        for n in (BUNDLED_READER, BUNDLED_CLOSE_READER))
    assert (cfg.predict.read_thresh, pair.close_cfg.predict.read_thresh) == (whole_t, close_t) == (0.9, 0.85)
    # the detectors' norms folded into their convs (the line recogniser reads as it was judged, unfolded)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for d in (pair.whole, pair.close) for m in d.modules())
    assert isinstance(pair.line, LineReader)  # shipped since 2026-12-06 (weights/MODEL.md)
    assert all(isinstance(m.backbone.body.conv1, BandedStem) for m in (pair.whole, pair.close))  # peak memory
    reader = Reader(scan="pyramid")
    assert isinstance(reader.detector, RoutedDetector)
    assert reader.source == f"bundled:{BUNDLED_READER}+{BUNDLED_CLOSE_READER}+{BUNDLED_LINE_READER}"
    assert type(reader.detector.close).__name__ == "PyramidDetector"  # the close-up reader scans as asked
    assert (reader.detector.settings.whole_thresh, reader.detector.settings.close_thresh) == (whole_t, close_t)
    alone = Reader(overrides=("predict.close_frac=null",))
    assert type(alone.detector).__name__ == "CascadeDetector" and alone.source == f"bundled:{BUNDLED_READER}"
    _, one = load_model(overrides=("predict.read_thresh=0.5",))
    assert one.close_cfg.predict.read_thresh == 0.5  # a threshold the user sets holds for both readers


class Reads(torch.nn.Module):
    """A close-up reader stand-in at one scale: the digits `number` side by side at `score` each."""

    def __init__(self, number: str, score: float = 0.9):
        super().__init__()
        self.number, self.score = number, score

    def forward(self, images):
        n = len(self.number)
        det = {"boxes": torch.tensor([[10.0 + 25 * i, 10, 30 + 25 * i, 60] for i in range(n)]).reshape(-1, 4),
               "scores": torch.full((n,), self.score), "labels": torch.tensor([int(c) + 1 for c in self.number],
                                                                             dtype=torch.int64)}
        return [det for _ in images]


def routed_read(own, *others):
    image = test_pyramid.image_with_blob(100, 100, (10, 10, 60, 90))  # a close-up: 80 px of 100
    det = RoutedDetector(whole_reader(), own, S, tuple(others))([image])[0]
    assert det["reader"] == "close"
    return numbers.read_number(det["boxes"], det["scores"], det["labels"], 0.98, 0.3, det["presence"])


def test_the_close_up_readings_at_its_scales_vote_by_summed_confidence():
    """The reader's own scale invents a cut digit ("55" at 0.95) that the other two scales leave ("5" at
    0.9 twice: 1.8 of confidence against 0.95); one other scale alone (0.9) does not outvote it, nor does
    an equal one (a tie keeps the own scale's); a scale that reads nothing does not vote; no scale reading
    anything gives the own scale's detections. Mutations: return the first view (the "5" is lost); count
    votes without confidence, or a tie going to the later view (the "33" case reads 88)."""
    assert routed_read(Reads("55", 0.95), Reads("5"), Reads("5")) == "5"
    assert routed_read(Reads("55", 0.95), Reads("5"), Reads("")) == "55"
    assert routed_read(Reads("33", 0.95), Reads("88", 0.95), Reads("")) == "33"
    assert routed_read(Reads("33", 0.86), Reads("88", 0.99)) == "88"  # the surer wins where one reads each
    assert routed_read(Reads(""), Reads("")) == "-1"
    assert routed_read(Reads("7")) == "7"  # no other scales: the reader alone


def test_the_bundled_close_up_reader_votes_at_its_training_scales_with_the_cascade_only():
    """Reader() reads close-ups at the close-up reader's model.min_size (72, 80 and its own 88 px, the long
    side in proportion to 320); predict.close_vote=false, or the pyramid scan, reads at its own scale
    alone. Mutation: vote_configs returning no views (or ignoring close_vote)."""
    from digitdet.reading.reader import Reader

    views = Reader().detector.close_views
    assert [(v.settings.read_short, v.settings.read_max) for v in views] == [(72, 262), (80, 291)]
    assert len(Reader(overrides=("predict.close_vote=false",)).detector.close_views) == 0
    assert len(Reader(scan="pyramid").detector.close_views) == 0
