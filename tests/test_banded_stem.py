"""model.inference.BandedStem / band_stem / prepare_for_reading: a ResNet stem run in bands of rows, and a
model prepared for reading (norms folded, stem banded, channels-last), give the same numbers."""

import pytest
import torch
from torch import nn

from digitdet.config import load_config
from digitdet.model.build import build_model
from digitdet.model.inference import BandedStem, band_stem, fold_batchnorm, prepare_for_reading


@pytest.mark.parametrize("height,width", [(96, 70), (97, 33), (130, 64), (5, 9), (1, 1)])
@pytest.mark.parametrize("band_rows", [1, 2, 3, 7])
def test_a_stem_in_bands_of_rows_gives_exactly_the_stem_in_one_pass(height, width, band_rows):
    torch.manual_seed(0)
    conv, pool = nn.Conv2d(3, 8, 7, 2, 3), nn.MaxPool2d(3, 2, 1)
    x = torch.randn(2, 3, height, width)
    with torch.inference_mode():
        whole = pool(torch.relu(conv(x)))
        banded = BandedStem(conv, pool, band_rows)(x)
    assert banded.shape == whole.shape
    assert torch.equal(banded, whole)  # every output from the same inputs: not merely close


def test_a_stem_it_cannot_band_is_refused():
    with pytest.raises(ValueError, match="plain conv"):
        BandedStem(nn.Conv2d(3, 8, 3, 2, 1, dilation=2), nn.MaxPool2d(3, 2, 1))
    with pytest.raises(ValueError, match="floor pool"):
        BandedStem(nn.Conv2d(3, 8, 7, 2, 3), nn.MaxPool2d(3, 2, 1, ceil_mode=True))


def test_a_folded_reader_with_its_stem_banded_detects_the_same_boxes():
    cfg = load_config(["cpu"], ["model.backbone_weights=null", "model.representation_size=32",
                                "predict.score_thresh=0.0"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    fold_batchnorm(model)
    x = torch.rand(3, 240, 180)  # resized to 88 x 66 by the model (cpu.yaml): 22 pooled rows, three bands of 8
    with torch.inference_mode():
        before = model.backbone(x[None])
        one_pass = model([x])[0]
        assert band_stem(model, band_rows=8)
        body = model.backbone.body
        assert isinstance(body.conv1, BandedStem) and isinstance(body.maxpool, nn.Identity)
        after = model.backbone(x[None])
        banded = model([x])[0]
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert len(one_pass["boxes"]) > 0
    for k in ("boxes", "scores", "labels"):
        assert torch.equal(banded[k], one_pass[k])


def test_a_model_without_a_folded_resnet_stem_is_left_alone():
    cfg = load_config(["cpu"], ["model.backbone_weights=null", "model.representation_size=32"])
    model = build_model(cfg).eval()  # its stem's norm not folded: conv1 -> bn1 -> relu -> maxpool
    assert not band_stem(model)
    assert isinstance(model.backbone.body.conv1, nn.Conv2d)
    assert not band_stem(nn.Linear(2, 2))


def test_a_model_prepared_for_reading_is_channels_last_and_detects_the_same_boxes():
    cfg = load_config(["cpu"], ["model.backbone_weights=null", "model.representation_size=32",
                                "predict.score_thresh=0.0"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = torch.rand(3, 300, 220)
    with torch.inference_mode():
        plain = model([x])[0]
        prepare_for_reading(model)
        prepared = model([x])[0]
    assert isinstance(model.backbone.body.conv1, BandedStem)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert len(plain["boxes"]) > 0 and torch.equal(prepared["labels"], plain["labels"])
    torch.testing.assert_close(prepared["boxes"], plain["boxes"], rtol=0, atol=1e-3)
    torch.testing.assert_close(prepared["scores"], plain["scores"], rtol=0, atol=1e-5)
