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
