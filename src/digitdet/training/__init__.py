"""Training a detector: `fit` owns the epoch loop, checkpoints and the run folder, `engine` is the stateless
epoch step, `budget` turns a minutes budget into steps, `evaluate` scores a model on a split (COCO stats and
number accuracy, read the way digitdet.reading reads), `pretrain` trains the trunk as a glyph classifier and
`distributed` sets up multi-process runs. It may import the ground floor, digitdet.data, digitdet.model and
digitdet.reading (validation reads numbers like the reader does), never the studies, serve or cli above it.
"""
