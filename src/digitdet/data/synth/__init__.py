"""The synthetic house-number generator and its modes: `generate` writes a COCO dataset (the embedded
default data), `modes` mixes crop / tight / plaque / scene / relief / cut / sign renders, `render` draws
glyphs and the box rule, `scene`, `compose`, `plaque`, `wall`, `relief` and `sign` build the pictures
around them, `lens` adds a poor camera's faults, `style` picks fonts, colours and textures, and
`glyph_crops` cuts single-glyph crops for pretraining. It may import the ground floor (config, errors,
io) and the rest of digitdet.data, nothing above. The generator's public API is
re-exported here: `from digitdet.data.synth import generate_dataset, render_sample, sample_rng`.
"""

from digitdet.data.synth.generate import (
    MODES,
    PREVIEW_CELL,
    SPLITS,
    SYNTH_FORMAT,
    SYNTH_MARKER,
    Sample,
    check_modes,
    check_replaceable,
    generate_dataset,
    is_synthetic,
    map_renders,
    parse_modes,
    render_mixed,
    render_sample,
    sample_rng,
    write_preview,
)

__all__ = ["SPLITS", "MODES", "Sample", "generate_dataset", "render_sample", "render_mixed", "write_preview",
           "sample_rng", "parse_modes", "check_modes", "PREVIEW_CELL", "SYNTH_MARKER", "SYNTH_FORMAT",
           "is_synthetic", "check_replaceable", "map_renders"]
