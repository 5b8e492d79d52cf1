"""The stage registry: short names to dotted paths, loaded lazily (pygeoapi's plugin shape).

A pipeline may also name a stage by its dotted path (``mycity.stages:Kerbs``),
so a city adds its own stage without forking.
"""

from __future__ import annotations

import importlib

from gis.errors import InputError

STAGES: dict[str, str] = {
    "readers.las": "pipelines.stages.readers:LasReader",
    "filters.noise": "pipelines.stages.filters:NoiseFilter",
    "filters.ground": "pipelines.stages.filters:GroundFilter",
    "filters.classify": "pipelines.stages.filters:ClassifyFilter",
    "writers.dtm": "pipelines.stages.rasters:DtmWriter",
    "writers.dsm": "pipelines.stages.rasters:DsmWriter",
    "writers.ndsm": "pipelines.stages.rasters:NdsmWriter",
    "writers.hillshade": "pipelines.stages.rasters:HillshadeWriter",
    "writers.density": "pipelines.stages.rasters:DensityWriter",
    "writers.contours": "pipelines.stages.vectors:ContoursWriter",
    "writers.footprints": "pipelines.stages.vectors:FootprintsWriter",
    "writers.trees": "pipelines.stages.vectors:TreesWriter",
    "writers.canopy": "pipelines.stages.vectors:CanopyWriter",
}


def resolve(type_name: str) -> type:
    """The stage class of a registry name or of a ``module:Class`` dotted path."""
    target = STAGES.get(type_name, type_name)
    module_name, _, class_name = target.partition(":")
    if not class_name:
        known = ", ".join(sorted(STAGES))
        raise InputError(f"unknown stage type '{type_name}'; use one of {known} or a 'module:Class' path")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"stage type '{type_name}': cannot load {target} ({exc})") from None
