"""model/line.py and training/line.py: the line recogniser's lines, CTC reading and likelihood, its packed
file, and `digitdet line prepare/train/pack` on a tiny synthetic folder (a resumed run ends where an
uninterrupted one does)."""

import numpy as np
import pytest
import torch
from PIL import Image

from digitdet.cli import main
from digitdet.errors import DataError, DigitdetError
from digitdet.model import line
from digitdet.training import blanks
from digitdet.training import line as line_training
from tiny import make_tiny_dataset


def lines(*paths):
    """Logits B x T x 11 that put (nearly) all probability on each given frame path (0 = blank, k = digit k-1)."""
    out = torch.full((len(paths), len(paths[0]), 11), -20.0)
    for b, path in enumerate(paths):
        for t, k in enumerate(path):
            out[b, t, k] = 20.0
    return out


def test_a_line_keeps_the_aspect_pads_with_the_edge_and_squashes_long_images():
    """A 60 x 30 image is 64 px of its 32 px high line, the rest its last column repeated; a 600 x 30 one is
    squashed to 128. Mutation: pad with zeros (the right part black)."""
    a = np.zeros((30, 60, 3), np.uint8)
    a[:, -6:] = (200, 100, 50)  # wide enough that bicubic keeps its colour at the edge
    got = line.to_line(Image.fromarray(a))
    assert got.shape == (line.H, line.W, 3) and got.dtype == np.uint8
    assert line.line_width(60, 30) == 64 and line.line_width(600, 30) == 128 and line.line_width(1, 500) == 1
    assert (got[:, 64:] == got[:, 63:64]).all() and tuple(got[5, 100]) == (200, 100, 50)


def test_greedy_decoding_gives_the_number_and_where_each_digit_starts():
    """Mutation: repeats not collapsed in decode ("1123"), or digit k read as k (not k - 1)."""
    got = line.decode(lines([0, 2, 2, 0, 3, 0, 4, 4], [0] * 8, [0, 2, 0, 2, 0, 0, 0, 0]))
    assert got == [("123", [1, 4, 6]), (None, []), ("11", [1, 3])]


def test_the_likelihood_sums_the_alignments_of_the_number_and_not_of_others():
    """Mutation: digit k as class k in ctc_targets; the CTC loss returned unnegated."""
    logits = lines([0, 2, 2, 0, 3, 0], [0] * 6)  # "12" (the 1 held two frames), and an empty line
    got = line.log_likelihood(logits, ["12", None])
    assert got[0] == pytest.approx(0.0, abs=1e-3) and got[1] == pytest.approx(0.0, abs=1e-3)
    wrong = line.log_likelihood(logits, [None, "21"])
    assert wrong[0] < -30 and wrong[1] < -30  # no number where "12" is written; a number on the empty line
    assert line.log_likelihood(logits[:1], ["21"])[0] < -30  # the digits swapped
    assert line.log_likelihood(logits[:1], ["112"])[0] < -30  # a doubled digit needs a blank between


def test_the_recogniser_takes_a_line_batch_to_32_steps_of_11_classes():
    for width, params in ((1.0, 0.59e6), (1.5, 1.32e6)):
        model = line.LineReader(width).eval()
        assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=0.02)
    assert model(torch.rand(2, 3, line.H, line.W)).shape == (2, line.W // line.STRIDE, 11)


def test_a_damaged_file_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "line.pt"
    bad.write_bytes(b"not torch")
    with pytest.raises(DigitdetError, match=r"line\.pt: not a digitdet line recogniser") as err:
        line.load_line_reader(bad)
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("synth"), train=40, valid=0, test=0, seed=3)


def test_prepare_keeps_the_close_ups_with_their_numbers(synth, tmp_path):
    """The .npz holds one line per close-up (tallest digit box >= 0.35 of the height), its number as the
    generator wrote it. Mutation: the height test dropped in close_ups (every image with digits kept)."""
    from digitdet.data.coco import load_coco
    from digitdet.training.evaluate import truth_numbers

    coco = load_coco(synth / "train.json", synth / "train")
    truth = truth_numbers(coco)
    want = [(im["file_name"], truth[im["id"]]) for im in coco.images if coco.boxes.get(im["id"]) is not None
            and len(coco.boxes[im["id"]]) and truth[im["id"]].isdigit()
            and max(b[3] - b[1] for b in coco.boxes[im["id"]]) >= 0.35 * im["height"]]
    assert 0 < len(want) < sum(truth[i].isdigit() for i in truth)  # some whole photos are left out
    assert main(["-q", "line", "prepare", str(synth), "--out", str(tmp_path / "l.npz"), "--workers", "1"]) == 0
    d = np.load(tmp_path / "l.npz")
    assert d["x"].shape == (len(want), line.H, line.W, 3) and d["y"].tolist() == [n for _, n in want]
    with Image.open(synth / "train" / want[0][0]) as im:
        assert (d["x"][0] == line.to_line(im)).all()


def test_with_context_prepare_keeps_the_regions_the_dispute_would_read(synth, tmp_path):
    """--context 1: each line is of the region pair_like_region draws (seed 5, in order) around the number.
    Mutation: the context ignored (whole close-ups written)."""
    assert main(["-q", "line", "prepare", str(synth), "--out", str(tmp_path / "l.npz"), "--workers", "1",
                 "--context", "1", "--seed", "5"]) == 0
    d = np.load(tmp_path / "l.npz")
    items = line_training.close_ups(synth)
    rng = np.random.default_rng(5)
    regions = [line_training.pair_like_region(b, size, 1.0, rng) for _, _, b, size in items]
    assert d["y"].tolist() == [n for _, n, _, _ in items]
    cropped = [i for i, (r, it) in enumerate(zip(regions, items)) if r != (0, 0, *it[3])]
    assert cropped, "some regions are smaller than their photos"
    for i in (0, cropped[0]):
        with Image.open(items[i][0]) as im:
            assert (d["x"][i] == line.to_line(im.crop(regions[i]))).all()


def test_blanks_are_regions_clear_of_every_digit_and_lookalike_read_as_no_number(synth, tmp_path):
    """--blanks 12: twelve lines more, truth "" (no number), after the close-ups; every blank region drawn
    (the same draws, seed 5) misses every digit and lookalike box of its photo and lies inside it.
    Mutations: holds_nothing always true; the blanks' lines not written."""
    from digitdet.data.coco import load_coco

    assert main(["-q", "line", "prepare", str(synth), "--out", str(tmp_path / "l.npz"), "--workers", "1",
                 "--context", "1", "--seed", "5", "--blanks", "12"]) == 0
    d = np.load(tmp_path / "l.npz")
    n = len(line_training.close_ups(synth))
    assert d["y"].tolist()[n:] == [""] * 12 and all(d["y"][:n])
    rng = np.random.default_rng(5)  # prepare's draws: the close-ups' regions, then the blanks'
    for _, _, b, size in line_training.close_ups(synth):
        line_training.pair_like_region(b, size, 1.0, rng)
    path, region = blanks.blank_regions(synth, 12, 1.0, rng)[0]
    with Image.open(path) as im:
        assert (d["x"][n] == line.to_line(im.crop(region))).all()
    coco = load_coco(synth / "train.json", synth / "train")
    ids = {im["file_name"]: im for im in coco.images}
    found = blanks.blank_regions(synth, 200, 1.0, np.random.default_rng(0))
    assert len(found) > 50
    for path, (x0, y0, x1, y1) in found:
        im = ids[path.name]
        assert 0 <= x0 < x1 <= im["width"] and 0 <= y0 < y1 <= im["height"]
        boxes = np.concatenate([coco.boxes[im["id"]].reshape(-1, 4), coco.lookalikes.get(im["id"], np.zeros((0, 4)))])
        assert not np.any((boxes[:, 0] < x1) & (boxes[:, 2] > x0) & (boxes[:, 1] < y1) & (boxes[:, 3] > y0))


def test_mine_keeps_the_region_of_each_number_read_in_a_number_free_crop(synth, tmp_path, monkeypatch):
    """A stand-in reader reads "1" in every other crop, a 10 x 20 box at (5, 6): one line per such crop, of
    line_region around that box at context 1, truth ""; crops read as none give no line; nothing read at all
    is one line naming the folder. Mutations: a line for every crop; the region not widened (the box alone)."""
    from digitdet.reading.dispute import line_region
    from digitdet.reading.grouping import Candidate, Digit
    from digitdet.reading.reader import Reading

    calls = []

    class Stub:
        def __init__(self, overrides=()):
            assert "predict.line_margin=null" in overrides

        def read_image(self, im):
            calls.append(im.size)
            if len(calls) % 2:
                return Reading(file="")
            d = Digit((5.0, 6.0, 15.0, 26.0), 1, 0.99)
            return Reading(file="", number="1", candidates=[Candidate("1", 0.99, 1.0, d.box, [d])])

    import digitdet.reading.reader as reader_module

    monkeypatch.setattr(reader_module, "Reader", Stub)
    crops = blanks.blank_crops([synth], 6, seed=4, split="train")
    assert main(["-q", "line", "mine", str(synth), "--out", str(tmp_path / "h.npz"), "--n", "6", "--seed", "4"]) == 0
    d = np.load(tmp_path / "h.npz")
    assert len(calls) == len(crops) >= 4 and d["y"].tolist() == [""] * (len(crops) // 2)
    path, box = crops[1]
    with Image.open(path) as im:
        crop = im.convert("RGB").crop(box)
    assert (d["x"][0] == line.to_line(crop.crop(line_region((5, 6, 15, 26), 20.0, *crop.size, 1.0)))).all()
    monkeypatch.setattr(Stub, "read_image", lambda self, im: Reading(file=""))
    with pytest.raises(DataError, match="no number read"):
        blanks.mine([synth], tmp_path / "none.npz", 4, seed=4, progress=False)


def test_a_blank_head_separates_its_lines_and_leaves_the_recogniser_as_it_was(tmp_path):
    """A packed recogniser (random weights) and lines it can tell apart (noise with a number, flat grey
    without): the fitted file reads the same logits as before and its head gives most blank lines >= 0.5 and
    most number lines < 0.5; the meta says what it was fitted on; a training checkpoint is refused.
    Mutations: the standardisation folded without the mean; the recogniser's weights not copied as they are."""
    torch.manual_seed(0)
    rec = tmp_path / "rec.pt"
    torch.save({"kind": "line-reader", "width": 0.25, "meta": {}, "model": {k: v.half() if v.is_floating_point()
                else v for k, v in line.LineReader(0.25).state_dict().items()}}, rec)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (60, line.H, line.W, 3), dtype=np.uint8)
    flat = np.full((50, line.H, line.W, 3), 128, np.uint8) + rng.integers(0, 8, (50, 1, 1, 1), dtype=np.uint8)
    np.savez(tmp_path / "l.npz", x=np.concatenate([noise, flat[:40]]), y=np.array(["12"] * 60 + [""] * 40))
    np.savez(tmp_path / "h.npz", x=flat[40:], y=np.array([""] * 10))
    done = blanks.fit_blank_head(rec, [tmp_path / "l.npz"], tmp_path / "out.pt", hard=[tmp_path / "h.npz"],
                                 numbers=50, blanks=30)
    assert done["hard"] == 10 and done["train_accuracy"] >= 0.9
    before, after = line.load_line_reader(rec), line.load_line_reader(tmp_path / "out.pt")
    x = line.as_batch(np.concatenate([noise[:20], flat[:20]]))
    with torch.no_grad():
        assert before.read(x)[1] is None and torch.equal(before(x), after(x))
        p = after.read(x)[1]
    assert p.shape == (40,) and (p[:20] < 0.5).float().mean() >= 0.9 and (p[20:] >= 0.5).float().mean() >= 0.9
    meta = torch.load(tmp_path / "out.pt", weights_only=True)["meta"]["blank_head"]
    assert meta["numbers"] == 50 and meta["hard_lines"] == 10 and meta["hard"] == [str(tmp_path / "h.npz")]
    torch.save({"state": {}, "width": 0.25}, tmp_path / "ck.pt")
    with pytest.raises(DataError, match="not a packed line recogniser"):
        blanks.fit_blank_head(tmp_path / "ck.pt", [tmp_path / "l.npz"], tmp_path / "x.pt", numbers=5, blanks=5)


def packed_file(path, model, **extra):
    """`model` saved as `digitdet line pack` writes a float16 file."""
    torch.save({"kind": "line-reader", "width": model.width, "meta": {"note": "test"}, **extra,
                "model": {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}}, path)
    return path


@pytest.mark.parametrize("head, says, own, high", [
    (-100.0, "none", None, [True] * 3), (-100.0, "1", None, [False] * 3), (100.0, "1", None, [True] * 3),
    (-100.0, "blank or 1", None, [True, False, False]), (-100.0, "blank or 1", "1", [False] * 3)])
def test_a_vetoer_packed_beside_the_recogniser_decides_the_no_number_probability_with_its_head(tmp_path, head, says,
                                                                                            own, high):
    """`line pack REC --int8 --veto VET`: the file reads with REC's weights (as `line pack REC --int8` alone
    stores them), keeps REC's no-number head, and its no-number probability for a line read as a number is the
    larger of the head's and the vetoer's P(none) / (P(none) + P(number)): a vetoer that sees only blanks says
    ~1, one that sees "1" everywhere ~0 for "1" (and for "27": relative to the numbers asked about), unless the
    head says ~1; one that sees blank or "1" at every frame says ~1 against "27" alone and ~0 against "27" or
    "1" (the likeliest reading offered), and ~0 against "27" alone where REC itself reads "1" (its own reading
    is weighed too); asked about no number, only the head speaks. Mutations: the vetoer not loaded; none and
    the number swapped in read; REC's head dropped in the re-pack; the smaller of head and vetoer taken; the
    first reading offered used instead of the likeliest; REC's own reading not weighed."""
    torch.manual_seed(0)
    blank = {"weight": torch.zeros(1, 4 * 64 + 2), "bias": torch.tensor([head])}
    reader = line.LineReader(0.5)
    with torch.no_grad():  # REC reads no number, or "1", whatever the line (its weights still in every logit)
        reader.head.bias[2 if own == "1" else 0] += 1000.0
    rec = packed_file(tmp_path / "rec.pt", reader, blank=blank)
    vetoer = line.LineReader(0.25)
    with torch.no_grad():  # every frame the blank, or every frame a "1", whatever the line
        vetoer.head.weight.zero_()
        vetoer.head.bias.copy_({"none": torch.tensor([20.0] + [0.0] * 10),  # class d + 1: digit d
                                "1": torch.tensor([0.0, 0.0, 20.0] + [0.0] * 8),
                                "blank or 1": torch.tensor([0.0, -20.0, 0.0] + [-20.0] * 8)}[says])
    vet = packed_file(tmp_path / "vet.pt", vetoer)
    assert main(["line", "pack", str(rec), "--out", str(tmp_path / "both.pt"), "--int8", "--veto", str(vet)]) == 0
    line.pack_line_reader(rec, tmp_path / "alone.pt", int8=True)
    both, alone = line.load_line_reader(tmp_path / "both.pt"), line.load_line_reader(tmp_path / "alone.pt")
    x = line.as_batch(np.random.default_rng(0).integers(0, 256, (3, line.H, line.W, 3), dtype=np.uint8))
    with torch.no_grad():
        logits, none = both.read(x, [["27"], ["27", "1"], ["1"]] if says == "blank or 1" else [["1"], ["1"], ["27"]])
        assert torch.equal(logits, alone(x)) and [n for n, _ in line.decode(logits)] == [own] * 3
        assert torch.equal(both.read(x)[1], alone.read(x)[1])  # no number asked about: the head alone
    assert [bool(p > 0.99) if h else bool(p < 0.01) for p, h in zip(none, high)] == [True] * 3


def test_pair_like_regions_hold_the_number_drop_an_end_digit_or_take_the_whole_photo():
    """Of 1,000 draws around "123" (digits 60 px high, 40 apart, in a 400 x 200 photo) at context 1: about a
    tenth are the whole photo, every other holds the middle digit, and about 0.9 x 0.15 start where the
    first digit was left out. Mutation: no end digit left out; no whole photo."""
    boxes = np.array([[100, 70, 130, 130], [140, 70, 170, 130], [180, 70, 210, 130]], np.float64)
    rng = np.random.default_rng(0)
    got = [line_training.pair_like_region(boxes, (400, 200), 1.0, rng) for _ in range(1000)]
    whole = sum(r == (0, 0, 400, 200) for r in got)
    assert 60 < whole < 140
    part = [r for r in got if r != (0, 0, 400, 200)]
    assert all(r[0] <= 140 and r[1] <= 70 and r[2] >= 170 and r[3] >= 130 for r in part)
    assert all(0 <= r[0] < r[2] <= 400 and 0 <= r[1] < r[3] <= 200 for r in part)
    first_out = sum(r[0] > 100 - 60 + 0.15 * 60 for r in part)  # margin measured from the second digit
    assert 80 < first_out < 190


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(synth, tmp_path, monkeypatch):
    """Stopped after its 3rd step (a checkpoint every 2 steps) and resumed, training gives the uninterrupted
    run's weights exactly; resuming with other settings is refused. Mutation: the batch's augmentation drawn
    from a generator not seeded by (seed, epoch, step); or the scheduler's state not restored."""
    torch.set_num_threads(1)
    data = tmp_path / "l.npz"
    line_training.prepare([synth], data, workers=1, progress=False)
    s = line_training.LineSettings(epochs=2, batch=4, width=0.25, save_every=2)
    whole = line_training.train([data], tmp_path / "a.pt", s, progress=False)
    assert whole["views"] == 2 * (len(np.load(data)["y"]) // 4) * 4

    calls = {"n": 0}
    real = line_training.augment

    def stops(xb, rng):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(xb, rng)

    monkeypatch.setattr(line_training, "augment", stops)
    with pytest.raises(KeyboardInterrupt):
        line_training.train([data], tmp_path / "b.pt", s, progress=False)
    monkeypatch.setattr(line_training, "augment", real)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["step"] == 2
    line_training.train([data], tmp_path / "b.pt", s, resume=True, progress=False)
    a = torch.load(tmp_path / "a.pt", weights_only=True)["state"]
    b = torch.load(tmp_path / "b.pt", weights_only=True)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(DataError, match="resume with the same settings"):
        line_training.train([data], tmp_path / "b.pt", line_training.LineSettings(epochs=3, batch=4, width=0.25),
                            resume=True, progress=False)


def test_pack_writes_float16_weights_that_read_as_the_checkpoint_does(synth, tmp_path):
    data = tmp_path / "l.npz"
    line_training.prepare([synth], data, workers=1, progress=False)
    assert main(["-q", "line", "train", str(data), str(data), "--out", str(tmp_path / "c.pt"), "--epochs", "1",
                 "--batch", "8", "--width", "0.5"]) == 0  # two files are trained on together
    assert torch.load(tmp_path / "c.pt", weights_only=True)["close_ups"] == 2 * len(np.load(data)["y"])
    assert main(["line", "pack", str(tmp_path / "c.pt"), "--out", str(tmp_path / "p.pt")]) == 0
    packed = torch.load(tmp_path / "p.pt", weights_only=True)
    assert packed["width"] == 0.5 and packed["meta"]["settings"]["width"] == 0.5
    assert {v.dtype for v in packed["model"].values() if v.is_floating_point()} == {torch.float16}
    x = line.as_batch(np.load(data)["x"][:4])
    with torch.no_grad():
        got = line.load_line_reader(tmp_path / "p.pt")(x)
        want = line.load_line_reader(tmp_path / "c.pt")(x)
    assert torch.allclose(got, want, atol=0.05)


def test_pack_int8_stores_kernels_in_half_the_bytes_and_reads_as_the_checkpoint_does(synth, tmp_path):
    """`line pack --int8`: every kernel and matrix as int8 with a float16 scale per output row (no float
    copy of them), under 60 % of the float16 file, and the loaded recogniser's logits within the int8 step of
    the checkpoint's. Mutations: keep the int8 kernels' float16 copies in 'model'; load them unscaled."""
    data = tmp_path / "l.npz"
    line_training.prepare([synth], data, workers=1, progress=False)
    line_training.train([data], tmp_path / "c.pt", line_training.LineSettings(epochs=1, batch=8, width=1.0),
                        progress=False)
    assert main(["line", "pack", str(tmp_path / "c.pt"), "--out", str(tmp_path / "f16.pt")]) == 0
    assert main(["line", "pack", str(tmp_path / "c.pt"), "--out", str(tmp_path / "i8.pt"), "--int8"]) == 0
    packed = torch.load(tmp_path / "i8.pt", weights_only=True)
    assert packed["int8"] and all(q["q"].dtype == torch.int8 and q["scale"].dtype == torch.float16
                                  and q["scale"].shape == q["q"].shape[:1] for q in packed["int8"].values())
    assert not set(packed["int8"]) & set(packed["model"])
    assert {k for k, v in packed["model"].items() if v.is_floating_point() and v.dim() >= 2} == set()
    assert (tmp_path / "i8.pt").stat().st_size < 0.6 * (tmp_path / "f16.pt").stat().st_size
    x = line.as_batch(np.load(data)["x"][:4])
    with torch.no_grad():
        got = line.load_line_reader(tmp_path / "i8.pt")(x)
        want = line.load_line_reader(tmp_path / "c.pt")(x)
    assert torch.allclose(got, want, atol=0.1), float((got - want).abs().max())


def test_init_starts_from_a_recogniser_and_refuses_another_width(synth, tmp_path):
    """`line train --init A`: at a vanishing learning rate the run's weights stay A's (not a fresh
    network's), its settings name A, also from a packed file with a vetoer beside A; a recogniser of another
    width is one DataError naming it. Mutations: skip loading settings.init in training/line.train; load the
    init file's whole state (its vetoer's keys too)."""
    torch.set_num_threads(1)
    data = tmp_path / "l.npz"
    line_training.prepare([synth], data, workers=1, progress=False)
    line_training.train([data], tmp_path / "a.pt", line_training.LineSettings(epochs=1, batch=4, width=0.25),
                        progress=False)
    assert main(["-q", "line", "train", str(data), "--out", str(tmp_path / "b.pt"), "--epochs", "1", "--batch", "4",
                 "--width", "0.25", "--lr", "1e-12", "--init", str(tmp_path / "a.pt")]) == 0
    a, b = (line.load_line_reader(tmp_path / f"{k}.pt") for k in "ab")
    fresh = line.LineReader(0.25)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    assert not all(torch.allclose(pa, pf, atol=1e-3) for pa, pf in zip(a.parameters(), fresh.parameters()))
    assert torch.load(tmp_path / "b.pt", weights_only=True)["settings"]["init"] == str(tmp_path / "a.pt")
    # a shipped-like file, a vetoer packed beside the recogniser: the run starts from the recogniser alone
    line.pack_line_reader(tmp_path / "a.pt", tmp_path / "av.pt", veto=tmp_path / "a.pt")
    assert main(["-q", "line", "train", str(data), "--out", str(tmp_path / "d.pt"), "--epochs", "1", "--batch", "4",
                 "--width", "0.25", "--lr", "1e-12", "--init", str(tmp_path / "av.pt")]) == 0
    d = line.load_line_reader(tmp_path / "d.pt")
    assert d.vetoer is None and all(torch.allclose(pa, pd, atol=1e-2) for pa, pd in zip(a.parameters(), d.parameters()))
    with pytest.raises(DataError, match=r"a\.pt: a recogniser of width 0\.25, not 0\.5"):
        line_training.train([data], tmp_path / "c.pt", line_training.LineSettings(
            epochs=1, batch=4, width=0.5, init=str(tmp_path / "a.pt")), progress=False)
    assert not (tmp_path / "c.pt").exists()


def test_a_read_only_line_is_batched_without_a_warning_to_the_caller():
    """Lines from np.asarray of a PIL image are read-only; batching them must not make torch warn the
    library's caller (torch warns once a process, so a fresh one is asked). Mutation: torch.from_numpy."""
    import subprocess
    import sys

    code = ("import numpy as np; from digitdet.model.line import as_batch; "
            "a = np.arange(2 * 32 * 128 * 3, dtype=np.uint8).reshape(2, 32, 128, 3); a.flags.writeable = False; "
            "b = as_batch(a); assert b.shape == (2, 3, 32, 128) and round(float(b[0, 1, 0, 0]) * 255) == 1")
    run = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-500:]
