"""Words at the number's size beside it on a scene wall ("303 PARK LANE"): each letter is boxed as a
lookalike (synth.compose.letter_boxes), the way a number's letter is, and the image is the one drawn before
the letters were boxed (no draw of the generator moves)."""

import numpy as np

from digitdet.data.synth import sample_rng, wall
from digitdet.data.synth import style as sty
from digitdet.data.synth.compose import letter_boxes, text_line
from digitdet.data.synth.modes import render_mode


def test_each_letter_of_a_line_of_words_gets_its_own_box_in_plane_pixels():
    font = sty.pick_font(np.random.default_rng(0))
    g = text_line(np.random.default_rng(0), font, 40, "PARK LANE", (0.1, 0.1, 0.1))
    g.x, g.y = 500, -30  # placed beside a number, as wall.py places it
    boxes = letter_boxes(font, 40, "PARK LANE", g)
    assert len(boxes) == 8  # the space is not a letter
    assert all(a[0] < b[0] for a, b in zip(boxes, boxes[1:]))  # left to right
    h, w = g.ink.shape
    for x0, y0, x1, y1 in boxes:
        assert g.x <= x0 < x1 <= g.x + w and g.y <= y0 < y1 <= g.y + h
        assert y1 - y0 >= 0.5 * (max(b[3] for b in boxes) - min(b[1] for b in boxes))  # capitals, not slivers
    inked = np.flatnonzero((g.ink >= 0.5).any(0)) + g.x
    covered = np.zeros(len(inked), bool)
    for x0, _, x1, _ in boxes:
        covered |= (inked >= x0) & (inked < x1)
    assert covered.all()  # every inked column is some letter's


def test_scene_words_are_lookalikes_and_the_images_are_unchanged(monkeypatch):
    with_letters = [render_mode(sample_rng(0, 9, i), "scene") for i in range(1, 13)]
    monkeypatch.setattr(wall, "letter_boxes", lambda *args: [])
    without = [render_mode(sample_rng(0, 9, i), "scene") for i in range(1, 13)]
    for a, b in zip(with_letters, without):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image)) and a.boxes == b.boxes
        assert b.lookalikes == a.lookalikes[:len(b.lookalikes)]  # windows and slats first, as before
    added = sum(len(a.lookalikes) - len(b.lookalikes) for a, b in zip(with_letters, without))
    assert added >= 4, f"{added} letters boxed in 12 scene photos"
