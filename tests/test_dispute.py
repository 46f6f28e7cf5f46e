"""reading/dispute.py: the line recogniser disputes a close-up's number (stand-in recognisers give known
logits), inside the routing, and the bundled reader loads it when it is shipped."""

import pytest
import torch

import test_pyramid
import test_routing
from digitdet.model import line, packed
from digitdet.reading import numbers
from digitdet.reading.dispute import VETOES, dispute, line_boxes, line_of_tensor, line_region
from digitdet.reading.routing import RoutedDetector, RouteSettings

S = RouteSettings(close_frac=0.35, whole_thresh=0.98, close_thresh=0.85, dedup_iou=0.3, line_margin=3.0,
                  line_context=None)


def logits_of(number: str, at=(4, 10, 16, 22), sure: float = 20.0, rival: dict | None = None) -> torch.Tensor:
    """1 x 32 x 11 logits: blank everywhere but digit k of `number` at step at[k], `sure` nats above the rest;
    rival {k: (digit, nats)}: at step at[k] that other digit is only `nats` below it."""
    out = torch.zeros(1, line.W // line.STRIDE, 11)
    out[0, :, 0] = sure
    for k, c in enumerate(number):
        out[0, at[k], 0] = 0.0
        out[0, at[k], int(c) + 1] = sure
    for k, (digit, nats) in (rival or {}).items():
        out[0, at[k], digit + 1] = sure - nats
    return out


class Stub(torch.nn.Module):
    """A line recogniser that gives the same logits for every line; counts its calls."""

    def __init__(self, logits, none: float | None = None):
        super().__init__()
        self.logits, self.calls, self.none = logits, 0, none  # none: its no-number probability
        self.numbers = []  # the numbers each read was offered (a vetoer weighs none against them and its own)

    def forward(self, x):
        self.calls += 1
        assert x.shape == (1, 3, line.H, line.W)
        return self.logits

    def read(self, x, numbers=None):
        self.numbers.append(numbers)
        return self.forward(x), None if self.none is None else torch.tensor([self.none])


def pair_det(boxes, digits, score=0.99):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "scores": torch.full((len(digits),), score),
            "labels": torch.tensor([int(c) + 1 for c in digits]), "reader": "close"}


def read(det, thresh=0.98):
    return numbers.read_number(det["boxes"], det["scores"], det["labels"], thresh, 0.3, det.get("presence"))


IMAGE = test_pyramid.image_with_blob(100, 160, (40, 20, 120, 80))  # a close-up: 160 x 100, the line 51 px


def test_a_dropped_edge_digit_comes_back_with_boxes_where_the_line_reads_it():
    """The pair reads "16" (the cut 2 dropped), the line "216" beyond any doubt: the answer reads "216" at
    the callers' threshold, three boxes left to right, as tall as the pair's number, inside the photo.
    Mutations: the margin test inverted; boxes in line pixels (not scaled to the photo's)."""
    det = pair_det([[60, 20, 85, 80], [90, 20, 115, 80]], "16")
    got = dispute(Stub(logits_of("216", at=(2, 6, 10))), IMAGE, det, 3.0, 0.98, 0.3)
    assert got["reader"] == "line" and read(got) == "216"
    b = got["boxes"]
    assert b.shape == (3, 4) and (b[:, 1] == 20).all() and (b[:, 3] == 80).all()
    assert (b[1:, 0] >= b[:-1, 0]).all() and float(b[:, 0].min()) >= 0 and float(b[:, 2].max()) <= 160
    scale = 160 / line.line_width(160, 100)
    assert float(b[2, 0] + b[2, 2]) / 2 == pytest.approx((10 + 0.5) * line.STRIDE * scale)  # where step 10 is
    assert float(b[2, 2] - b[2, 0]) == pytest.approx(4 * line.STRIDE * scale)  # the steps between digits


def test_as_many_digits_keep_the_pairs_boxes_relabelled():
    """The pair reads "13", the line "12": the pair's boxes, the line's digits. Mutation: always boxes from
    the line's path."""
    det = pair_det([[90, 20, 115, 80], [60, 20, 85, 80]], "31")  # listed right to left
    got = dispute(Stub(logits_of("12")), IMAGE, det, 3.0, 0.98, 0.3)
    assert read(got) == "12" and got["boxes"].tolist() == [[60, 20, 85, 80], [90, 20, 115, 80]]


@pytest.mark.parametrize("margin, want", [(3.0, "13"), (0.5, "12")])
def test_the_line_wins_only_by_the_margin(margin, want):
    """At the second digit the line holds "2" only 1 nat likelier than "3": e^1 < e^3 keeps the pair's "13",
    a 0.5 margin gives the line's "12"."""
    det = pair_det([[60, 20, 85, 80], [90, 20, 115, 80]], "13")
    got = dispute(Stub(logits_of("12", rival={1: (3, 1.0)})), IMAGE, det, margin, 0.98, 0.3)
    assert read(got) == want and (got is det) == (want == "13")


def test_no_dispute_on_agreement_a_stacked_number_or_an_empty_line():
    stub = Stub(logits_of("21"))
    column = pair_det([[60, 10, 90, 45], [60, 50, 90, 85]], "12")  # "1" above "2": a stacked number
    assert dispute(stub, IMAGE, column, 3.0, 0.98, 0.3) is column and stub.calls == 0
    agreed = pair_det([[60, 20, 85, 80], [90, 20, 115, 80]], "21")
    assert dispute(stub, IMAGE, agreed, 3.0, 0.98, 0.3) is agreed and stub.calls == 1
    assert dispute(Stub(logits_of("")), IMAGE, agreed, 3.0, 0.98, 0.3) is agreed


@pytest.mark.parametrize("veto, none, want", [(None, 0.99, "1"), (0.9, 0.5, "1"), (0.9, None, "1"), (0.9, 0.95, "-1")])
def test_the_veto_drops_a_number_whose_region_the_head_says_holds_none(veto, none, want):
    """The pair reads "1" (a mortar joint) and the line reads it too: where the no-number probability
    reaches the veto the "1" is gone, its box too; no veto, a lower probability or a recogniser without a
    head keep it. With a veto the recogniser is offered the pair's number (a vetoer weighs none against it and
    its own reading). Mutations: the threshold test inverted; the veto taken whatever the probability; the
    pair's number not offered."""
    det = pair_det([[60, 20, 85, 80]], "1")
    stub = Stub(logits_of("1"), none)
    got = dispute(stub, IMAGE, det, 3.0, 0.98, 0.3, veto=veto, read_unread=False)
    assert read(got) == want
    assert len(got["boxes"]) == (0 if want == "-1" else 1)
    assert stub.numbers == [None if veto is None else [["1"]]]


def test_after_a_veto_the_next_number_is_disputed_in_turn_and_vetoes_are_bounded():
    """Two strays in different rows, the head sure neither holds a number: both are dropped, each read once.
    Six strays: VETOES of them are dropped and the one left is kept. Mutations: the vetoed number's
    detections kept (the same one picked again); no bound on the vetoes."""
    strays = [[10, 5, 20, 40], [130, 60, 140, 95]]
    stub = Stub(logits_of(""), 0.99)
    got = dispute(stub, IMAGE, pair_det(strays, "17"), 3.0, 0.98, 0.3, veto=0.9, read_unread=False)
    assert read(got) == "-1" and len(got["boxes"]) == 0 and stub.calls == 2
    rows = [[10 + 25 * k, 2 + 16 * k, 20 + 25 * k, 14 + 16 * k] for k in range(6)]  # a staircase: six rows
    stub = Stub(logits_of(""), 0.99)
    got = dispute(stub, IMAGE, pair_det(rows, "111111"), 3.0, 0.98, 0.3, veto=0.9, read_unread=False)
    assert len(got["boxes"]) == 6 - VETOES and stub.calls == VETOES + 1


def test_a_number_the_pair_missed_is_read_photo_high():
    got = dispute(Stub(logits_of("7", at=(12,))), IMAGE, pair_det([], ""), 3.0, 0.98, 0.3)
    assert read(got) == "7" and got["boxes"][0, 1] == 0 and got["boxes"][0, 3] == 100
    assert line_boxes("7", [12], None, (0, 0, 160, 100)).tolist() == got["boxes"].tolist()


@pytest.mark.parametrize("veto, none, want", [(None, 0.99, "7"), (0.9, 0.5, "7"), (0.9, 0.95, "-1")])
def test_the_veto_also_drops_the_number_the_line_reads_where_the_pair_read_none(veto, none, want):
    """A wall the pair reads nothing on, where the line recogniser reads "7": with a veto it is offered no
    number of the pair's (it weighs its own reading, test_line.py) and, where its no-number probability
    reaches the veto, the answer stays no number. The same after the pair's own number was vetoed: the line's
    reading of the whole photo is vetoed too. Mutations: the unread number not vetoed; vetoed whatever the
    probability."""
    stub = Stub(logits_of("7", at=(12,)), none)
    got = dispute(stub, IMAGE, pair_det([], ""), 3.0, 0.98, 0.3, veto=veto)
    assert read(got) == want and stub.numbers == [None if veto is None else [[]]]
    stub = Stub(logits_of("7", at=(12,)), none)
    got = dispute(stub, IMAGE, pair_det([[60, 20, 85, 80]], "1"), 3.0, 0.98, 0.3, veto=veto)
    assert read(got) == want  # "1" vetoed, then "7" read from the whole photo and vetoed; or "7" wins the dispute
    assert stub.numbers[:1] == [None if veto is None else [["1"]]]  # the pair's number offered


def test_a_region_is_the_numbers_box_widened_by_digit_heights_inside_the_photo():
    """Mutation: the margin in pixels, not digit heights; the region not clipped to the photo."""
    assert line_region([60, 20, 115, 80], 60.0, 160, 100, 0.5) == (30, 5, 145, 95)
    assert line_region([60, 20, 115, 80], 60.0, 160, 100, 1.5) == (0, 5, 160, 95)
    assert line_region([60, 20, 115, 80], 60.0, 160, 100, None) == line_region(None, 0.0, 160, 100, 1.0) \
        == (0, 0, 160, 100)


def test_with_context_the_line_reads_the_region_and_its_boxes_land_in_the_photo():
    """predict.line_context 0.5: the line recogniser gets the line of the pair's number widened by half a
    digit height each side (photo 30..145 x 5..95), and a digit it adds gets a box where that region's step
    is. Mutations: the whole close-up read; the boxes not shifted by the region's left edge."""
    seen = []

    class Keeps(Stub):
        def forward(self, x):
            seen.append(x)
            return super().forward(x)

    det = pair_det([[60, 20, 85, 80], [90, 20, 115, 80]], "16")
    got = dispute(Keeps(logits_of("216", at=(1, 4, 7))), IMAGE, det, 3.0, 0.98, 0.3, 0.5)
    assert torch.equal(seen[0], line.as_batch(line_of_tensor(IMAGE[:, 5:95, 30:145])[None]))
    assert read(got) == "216"
    scale = 115 / line.line_width(115, 90)
    assert float(got["boxes"][2, 0] + got["boxes"][2, 2]) / 2 == pytest.approx(30 + 7.5 * line.STRIDE * scale)


def test_the_routing_consults_the_line_on_close_ups_only():
    """Without predict.line_context, whole photos are not disputed. Mutation: the dispute called on whole
    photos too; predict.line_margin=null ignored."""
    stub = Stub(logits_of("5", at=(12,)))
    close = test_routing.Fixed()
    tall = test_pyramid.image_with_blob(100, 100, (10, 10, 60, 46))  # 36 px of 100: a close-up ("12")
    assert RoutedDetector(test_routing.whole_reader(), close, S, line=stub)([tall])[0]["reader"] == "line"
    small = test_pyramid.image_with_blob(300, 400, (100, 100, 130, 140))
    assert RoutedDetector(test_routing.whole_reader(), close, S, line=stub)([small])[0]["reader"] == "whole"
    assert stub.calls == 1
    off = RouteSettings(**{**S.__dict__, "line_margin": None})
    assert RoutedDetector(test_routing.whole_reader(), close, off, line=stub)([tall])[0]["reader"] == "close"
    assert stub.calls == 1


def test_with_context_the_number_of_a_whole_photo_is_disputed_too():
    """predict.line_context set: in a photo that is no close-up, the line reads the region of the number the
    whole-photo reader read and may win; a photo where it read none stays unread, the line not consulted.
    Mutations: whole photos never disputed; disputed with no number read."""
    stub = Stub(logits_of("5", at=(12,)))
    ctx = RouteSettings(**{**S.__dict__, "line_context": 1.0})
    small = test_pyramid.image_with_blob(300, 400, (100, 100, 130, 140))
    got = RoutedDetector(test_routing.whole_reader(), test_routing.Fixed(), ctx, line=stub)([small])[0]
    assert got["reader"] == "line" and read(got) == "5" and stub.calls == 1
    blank = torch.zeros(3, 300, 400)
    got = RoutedDetector(test_routing.whole_reader(), test_routing.Fixed(), ctx, line=stub)([blank])[0]
    assert got["reader"] == "whole" and len(got["boxes"]) == 0 and stub.calls == 1


def test_the_bundled_reader_loads_the_line_recogniser_when_shipped(tmp_path, monkeypatch):
    """With weights/line-crnn.pt beside the pair, Reader() consults it (and names it); predict.line_margin=null
    or its absence reads without; predict.line_veto reaches the routing. Mutations: load_model ignores the
    third file; routing.routed leaves line_veto out."""
    from digitdet.reading.reader import Reader

    for p in packed.WEIGHTS_DIR.glob("reader-*.pt"):
        (tmp_path / p.name).symlink_to(p)
    monkeypatch.setattr(packed, "WEIGHTS_DIR", tmp_path)
    assert Reader(device="cpu").detector.line is None
    torch.save({"width": 0.25, "model": line.LineReader(0.25).state_dict()}, tmp_path / "line-crnn.pt")
    reader = Reader(device="cpu")
    assert isinstance(reader.detector.line, line.LineReader) and reader.source.endswith("+line-crnn")
    assert reader.detector.settings.line_margin == 3.0
    assert Reader(device="cpu", overrides=["predict.line_veto=0.9"]).detector.settings.line_veto == 0.9
    assert Reader(device="cpu", overrides=["predict.line_margin=null"]).detector.line is None
