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
    "writers.las": "pipelines.stages.pointcloud:LasWriter",
    "writers.3dtiles": "pipelines.stages.tiles3d:Tiles3dWriter",
    "filters.buildings": "pipelines.stages.buildings:BuildingsFilter",
    "writers.buildings3d": "pipelines.stages.buildings:Buildings3dWriter",
    "writers.cityjson": "pipelines.stages.buildings:CityJsonWriter",
    "writers.buildings2d": "pipelines.stages.buildings:Buildings2dWriter",
    "readers.ifc": "pipelines.stages.interiors:IfcReader",
    "readers.indoor": "pipelines.stages.interiors:IndoorReader",
    "writers.interior3d": "pipelines.stages.interiors:Interior3dWriter",
    "writers.indoor2d": "pipelines.stages.interiors:Indoor2dWriter",
}


def resolve(type_name: str, where: str = "") -> type:
    """The stage class of a registry name or of a ``module:Class`` dotted path.

    Parameters
    ----------
    type_name
        ``readers.las``, ``writers.dtm``... or ``package.module:Class``.
    where
        Where the name was read (``FILE: stage 'TAG'``), for the messages.

    Raises
    ------
    InputError
        When the name is unknown, cannot be imported, is not a stage class, or
        names a base class that leaves methods abstract (it could be built but
        not run): refused before any data is touched.
    """
    prefix = f"{where}: " if where else ""
    target = STAGES.get(type_name, type_name)
    module_name, _, class_name = target.partition(":")
    if not class_name:
        known = ", ".join(sorted(STAGES))
        raise InputError(f"{prefix}unknown stage type '{type_name}'; use one of {known} or a 'module:Class' path")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"{prefix}stage type '{type_name}': cannot load {target} ({exc})") from None
    _check_runnable(found, type_name, prefix)
    return found


def _check_runnable(found: object, type_name: str, prefix: str) -> None:
    from pipelines.stages.base import Stage, missing_methods

    if not (isinstance(found, type) and issubclass(found, Stage)):
        raise InputError(f"{prefix}stage type '{type_name}' is not a stage class; name a subclass of "
                         f"pipelines.stages.base.Stage (or a registered type such as writers.dtm)")
    missing = missing_methods(found)
    if missing:
        methods = ", ".join(f"{name}()" for name in missing)
        raise InputError(f"{prefix}stage type '{type_name}' is an abstract base class ({methods} not implemented); "
                         f"name one of its concrete stages{_concrete_stages(found)} or a subclass implementing {methods}")


def _concrete_stages(base: type) -> str:
    """`` (writers.dtm, writers.dsm)``: the registered stages derived from ``base``, for the message."""
    names = []
    for name, target in STAGES.items():
        module_name, _, class_name = target.partition(":")
        if issubclass(getattr(importlib.import_module(module_name), class_name), base):
            names.append(name)
    return f" ({', '.join(names)})" if names else ""
