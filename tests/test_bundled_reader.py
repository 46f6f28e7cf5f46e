"""The reader shipped in the package: loads safely, reads with no checkpoint from the CLI, and reads a
number pasted small into a large photo and a tight crop (synthetic samples of split 9, never trained on)."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from digitdet.cli import main
from digitdet.data.synth import sample_rng
from digitdet.data.synth import style as synth_style
from digitdet.data.synth.modes import render_mode
from digitdet.model.packed import BUNDLED_CLOSE_READER, BUNDLED_READER, WEIGHTS_DIR
from digitdet.reading.reader import Reader

REAL = Path(__file__).resolve().parents[2] / "shared" / "real_plaques" / "images"
SPLIT = 9  # neither train (0), valid (1), test (2) nor the trunk's crops (3)


@pytest.fixture(scope="module")
def reader():
    return Reader()


def truth(sample) -> str:
    return "".join(str(lab) for _, lab in sorted(zip([b[0] for b in sample.boxes], sample.labels)))


@pytest.mark.parametrize("name", [BUNDLED_READER, BUNDLED_CLOSE_READER, "reader-resnet18-l3"])
def test_shipped_weights_are_small_and_load_without_unpickling_code(name):
    path = WEIGHTS_DIR / f"{name}.pt"
    packed = torch.load(path, map_location="cpu", weights_only=True)
    assert {"config", "model", "read_thresh", "meta"} <= set(packed)
    assert all(v.dtype in (torch.float16, torch.int64) for v in packed["model"].values())
    assert packed["meta"].get("command")  # the one command that reproduces it (weights/MODEL.md)
    assert path.stat().st_size <= 25e6
    assert sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.pt")) <= 40e6
    assert (WEIGHTS_DIR / "MODEL.md").is_file()


def test_a_number_pasted_small_into_a_large_photo_is_read(reader):
    wall = np.asarray(synth_style.textures()[0].convert("RGB").resize((1200, 900)))  # skimage's brick
    right = 0
    for i in range(1, 4):
        sample = render_mode(sample_rng(0, SPLIT, i), "plaque")
        im = sample.image
        scale = 80 / im.height  # the plaque about 80 px tall: its digits ~20-60 px in a 900-px photo
        small = im.resize((max(1, round(im.width * scale)), 80), Image.BILINEAR)
        photo = Image.fromarray(wall.copy())
        photo.paste(small, (700, 300))
        got = reader.read_image(photo)
        right += got.number == truth(sample)
        if got.number == truth(sample):
            x0, y0, x1, y1 = got.candidates[0].box
            assert 690 <= x0 < x1 <= 710 + small.width
            assert 290 <= y0 < y1 <= 310 + small.height
    assert right >= 2, f"read {right} of 3 pasted plaques"


def test_a_tight_crop_is_read(reader):
    right = sum(reader.read_image(s.image).number == truth(s)
                for s in (render_mode(sample_rng(0, SPLIT, i), "tight") for i in range(1, 6)))
    assert right >= 4, f"read {right} of 5 tight crops"


def number_and_wall_lines() -> tuple[torch.Tensor, torch.Tensor]:
    """Lines of ten tight crops of numbers (split 9) and of the generator's bare wall textures, as batches."""
    from digitdet.model.line import as_batch, to_line

    numbers = [to_line(render_mode(sample_rng(0, SPLIT, i), "tight").image) for i in range(1, 11)]
    walls = [to_line(t.convert("RGB").crop((0, 0, 240, 80))) for t in synth_style.textures()]
    return as_batch(np.stack(numbers)), as_batch(np.stack(walls))


def test_the_shipped_recogniser_tells_a_number_from_a_bare_wall(reader):
    """The bundled reader vetoes with the line recogniser's no-number head (predict.line_veto 0.9): the head
    gives tight crops of numbers (split 9) a low probability of holding none and bare wall textures a high
    one. Mutations: the head dropped from the shipped file; its weight negated."""
    line_reader = reader.detector.line
    assert reader.detector.settings.line_veto == 0.9 and line_reader.blank is not None
    numbers, walls = number_and_wall_lines()
    with torch.no_grad():
        none_n = line_reader.read(numbers)[1]
        none_w = line_reader.read(walls)[1]
    assert (none_n < 0.5).sum() >= 9 and (none_w >= 0.9).sum() >= 0.7 * len(walls), (none_n, none_w)


def test_the_shipped_vetoer_weighs_no_number_against_what_a_line_is_read_as(reader):
    """The shipped file also holds a vetoer (a second recogniser trained with number-free lines): weighing no
    number against what the recogniser reads in each line, it alone (the head set aside) gives tight crops of
    numbers a low probability of holding none and the bare walls read as a number a high one. Mutations: the
    vetoer dropped from the shipped file; the shipped recogniser packed as its own vetoer."""
    import copy

    from digitdet.model.line import decode

    vetoer_only = copy.deepcopy(reader.detector.line)
    assert vetoer_only.vetoer is not None
    vetoer_only.blank = None
    with torch.no_grad():
        said = []
        for x in number_and_wall_lines():
            read = [i for i, (n, _) in enumerate(decode(vetoer_only(x))) if n]
            said.append(vetoer_only.read(x[read], [[] for _ in read])[1])  # its own reading is weighed
    assert len(said[0]) == 10 and (said[0] < 0.5).sum() >= 9, said[0]
    assert len(said[1]) >= 5 and (said[1] >= 0.9).sum() >= 0.7 * len(said[1]), said[1]


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_plaques not present")
def test_read_and_predict_need_no_checkpoint(tmp_path, capsys):
    assert main(["-q", "read", str(REAL / "1.jpg")]) == 0
    path, number, conf = capsys.readouterr().out.strip().split("\t")
    assert path.endswith("1.jpg") and number == "729" and 0.5 <= float(conf) <= 1
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("1.jpg", "5.jpg"):
        (folder / name).write_bytes((REAL / name).read_bytes())
    assert main(["-q", "predict", "--images", str(folder), "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "pred.csv").open()))
    assert [(r["image_id"], r["pred_label"]) for r in rows] == [("1", "729"), ("5", "42")]


def test_cpu_config_starts_from_the_readers_trunk_and_nothing_else():
    from digitdet.config import load_config
    from digitdet.model import build_model

    # reader v1, by name: cpu.yaml starts from its trunk whichever reader reads whole photos
    packed = torch.load(WEIGHTS_DIR / "reader-resnet18-l3.pt", map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    model = build_model(load_config(["cpu"]))
    state = model.state_dict()
    trunk = [k for k in packed["model"] if k.startswith("backbone.body.") and "num_batches" not in k]
    assert len(trunk) > 50
    for k in trunk:  # the trunk is the reader's (float16 storage, loaded as float32) ...
        assert torch.equal(state[k], packed["model"][k].float()), k
    # ... while the FPN, RPN and box head start random: the demo still learns them from its own data
    for k in ("backbone.fpn.inner_blocks.0.0.weight", "rpn.head.cls_logits.weight", "roi_heads.box_head.fc6.weight"):
        assert not torch.equal(state[k], packed["model"][k].float()), k
    glyph = build_model(load_config(["cpu"], ["model.backbone_weights=bundled:glyph-resnet18-l3"])).state_dict()
    assert not torch.equal(glyph["backbone.body.layer3.0.conv1.weight"], state["backbone.body.layer3.0.conv1.weight"])


def test_a_readers_trunk_that_does_not_fit_is_a_clear_error():
    from digitdet.config import load_config
    from digitdet.errors import ConfigError
    from digitdet.model import build_model

    deeper = ["model.returned_layers=[2,3,4]", "model.anchor_sizes=[[24],[48],[96],[192]]",
              "model.aspect_ratios=[1.0]"]
    with pytest.raises(ConfigError, match=r"does not match the trunk: \d+ missing \(e\.g\. layer4"):
        build_model(load_config(["cpu"], deeper))


def test_the_reader_config_still_makes_the_bundled_reader():
    """`--config reader` (scripts/train_reader.sh) gives every setting the packed reader was trained with;
    keys added since are at their defaults, so cpu.yaml's later changes never leak into the recipe."""
    from digitdet.config import Config, load_config
    from digitdet.model import resolve_weights

    packed = torch.load(resolve_weights("bundled:reader-resnet18-l3"), weights_only=True)["config"]
    now, defaults = load_config(["reader"]).to_dict(), Config().to_dict()
    for section in now:
        for key, value in now[section].items():
            want = packed[section][key] if key in packed.get(section, {}) else defaults[section][key]
            assert value == want, f"{section}.{key}: reader.yaml gives {value!r}, the bundled reader had {want!r}"


def test_an_image_reads_the_same_alone_or_in_a_batch(reader):
    # A batch pads views to its largest: the RPN then proposes in the padding and answers change with the
    # company an image keeps (read vs predict vs the Ray engine). Each image is detected alone.
    images = [render_mode(sample_rng(0, SPLIT, i), mode).image for i, mode in ((1, "tight"), (2, "scene"), (3, "crop"))]
    empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64), "image_id": 0}
    tensors = [reader.transforms(im, empty)[0] for im in images]
    together = reader.detector(tensors)
    for t, det in zip(tensors, together):
        alone = reader.detector([t])[0]
        assert torch.equal(alone["boxes"], det["boxes"]) and torch.equal(alone["presence"], det["presence"])


def test_init_weights_name_a_shipped_reader_and_an_unknown_name_lists_them():
    from digitdet.errors import DigitdetError
    from digitdet.model.packed import load_model_weights

    by_name = load_model_weights(f"bundled:{BUNDLED_READER}")
    default = load_model_weights("bundled:reader")
    assert by_name.keys() == default.keys() and all(torch.equal(by_name[k], default[k]) for k in by_name)
    assert all(v.dtype != torch.float16 for v in by_name.values())  # float32 to train on
    with pytest.raises(DigitdetError, match=r"bundled:nope: no such shipped weights \(shipped: reader, .*resnet18"):
        load_model_weights("bundled:nope")
