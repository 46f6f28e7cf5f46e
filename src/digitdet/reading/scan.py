"""Which whole-photo detection predict, eval, read and serve run (config predict.scan)."""

from __future__ import annotations

from torch import nn

from digitdet.reading import cascade, pyramid, routing


def for_inference(model: nn.Module, cfg) -> nn.Module:
    """The model inside reading.cascade's CascadeDetector ("cascade", the default) or reading.pyramid's
    PyramidDetector ("pyramid"), or the model alone at its own scale ("single"). The bundled reader's pair
    of models (reading.routing.ReaderPair) becomes a RoutedDetector of the two, each scanning so."""
    if isinstance(model, routing.ReaderPair):
        return routing.routed(model, cfg, for_inference)
    if cfg.predict.scan == "cascade":
        return cascade.CascadeDetector(model, cascade.settings_for(cfg))
    if cfg.predict.scan == "pyramid":
        return pyramid.PyramidDetector(model, pyramid.settings_for(cfg))
    return model


def takes_bytes(detector: nn.Module) -> bool:
    """Whether `detector` (for_inference's) may be given uint8 images: the cascade and pyramid scans make
    every view float themselves (reading.pyramid.as_float), a pair when both its readers do; the model
    alone normalizes what it is given and needs float."""
    if isinstance(detector, routing.RoutedDetector):
        return takes_bytes(detector.whole) and takes_bytes(detector.close)
    return isinstance(detector, (cascade.CascadeDetector, pyramid.PyramidDetector))
