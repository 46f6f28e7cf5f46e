"""The detector and its files: `build` assembles the Faster R-CNN from torchvision parts (build_model is
the only place a config becomes constructor arguments), `checkpoint` saves and loads training checkpoints,
`packed` the float16 reader shipped in digitdet/weights (loaded with weights_only=True), `inference` runs a
model over a loader (what training's validation, predict and the studies share) and `onnx_runtime` runs an
exported model. It may import the ground floor (config, errors, io, metrics, viz) and digitdet.data,
nothing above. The builders callers use are re-exported here: `from digitdet.model import build_model`.
"""

from digitdet.model.build import (
    NUM_CLASSES,
    KeepSizeTransform,
    LookalikePredictor,
    build_model,
    count_parameters,
    make_trunk,
    resolve_weights,
    set_postprocess,
)

__all__ = ["NUM_CLASSES", "KeepSizeTransform", "LookalikePredictor", "build_model", "count_parameters",
           "make_trunk", "resolve_weights", "set_postprocess"]
