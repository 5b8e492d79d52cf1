"""Interior stages: ``readers.ifc``, ``readers.indoor``, ``writers.interior3d``, ``writers.indoor2d``.

A building's plans are read whole (one file is one building), not tile by tile:
:mod:`pipelines.interiors` runs these stages. Options are checked when the
pipeline is built; nothing is read before the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipelines.stages.base import Stage

HEIGHTS = ("orthometric", "ellipsoidal")


def _one_file(filename: list[str], tag: str) -> Path:
    from gis.errors import InputError

    if len(filename) != 1:
        raise InputError(f"stage '{tag}': give one plan file (one building per run), not {len(filename)}")
    return Path(filename[0])


@dataclass
class IfcOptions:
    filename: list[str] = field(default_factory=list)  # the building's .ifc file (one)
    origin: list[float] | None = None  # map x, y[, z] of the model's origin, for a model without georeferencing
    rotation: float = 0.0  # degrees, counter-clockwise from grid east, of the model's x axis (with origin)
    crs: str | None = None  # CRS of origin (default: the working CRS)
    workers: int = 0  # geometry processes, one iterator thread each (0: one per core, at most one per 0.5 MB)
    room_cut: float = 0.05  # metres above a room's floor where its outline is cut
    wall_cut: float = 1.2  # metres above the floor where walls are cut (a plan's cut height)

    def __post_init__(self) -> None:
        if not self.filename:
            raise ValueError("option 'filename' is required (the building's IFC file)")
        if self.workers < 0:
            raise ValueError(f"option 'workers' must be >= 0, not {self.workers}")
        self.georef()
        self.cuts()

    def georef(self):
        from pipelines.algorithms.ifc.georef import GeorefOptions

        return GeorefOptions(tuple(self.origin) if self.origin is not None else None, self.rotation, self.crs)

    def cuts(self):
        from pipelines.algorithms.ifc.reader import PlanCuts

        return PlanCuts(self.room_cut, self.wall_cut)


@dataclass
class IndoorOptions:
    filename: list[str] = field(default_factory=list)  # the building's indoor GeoJSON (one)
    on_invalid: str = "raise"  # a self-intersecting or overlapping room: raise, or skip it (reported)

    def __post_init__(self) -> None:
        if not self.filename:
            raise ValueError("option 'filename' is required (the building's indoor GeoJSON)")
        if self.on_invalid not in ("raise", "skip"):
            raise ValueError(f"option 'on_invalid' must be raise or skip, not {self.on_invalid}")


class _PlansReader(Stage):
    kind = "reader"
    whole_files = True
    interiors = True

    def path(self) -> Path:
        return _one_file(self.options.filename, self.tag)


class IfcReader(_PlansReader):
    Options = IfcOptions

    def read(self, crs):
        from pipelines.algorithms.ifc.reader import read_ifc

        options = self.options
        return read_ifc(self.path(), crs, options.georef(), options.workers or None, options.cuts())


class IndoorReader(_PlansReader):
    Options = IndoorOptions

    def read(self, crs):
        from pipelines.algorithms.indoor import read_indoor

        return read_indoor(self.path(), crs, self.options.on_invalid)


def _check_profile(options) -> None:
    from pipelines.algorithms.release import PROFILES

    if options.profile not in PROFILES:
        raise ValueError(f"option 'profile' must be one of {', '.join(PROFILES)}, not {options.profile}")


@dataclass
class Interior3dOptions:
    filename: str = "interior_3dtiles"  # the tileset folder in the output
    profile: str = "full"  # full (partners) or open (sensitive rooms generalised, no personal name)
    sensitive: str | None = None  # YAML list of sensitive rooms (default: the shipped list)
    heights: str = "orthometric"  # orthometric (the geoid is added) | ellipsoidal
    geoid: str | None = None  # geoid grid (default: EGM96 from proj-data)

    def __post_init__(self) -> None:
        _check_profile(self)
        if self.heights not in HEIGHTS:
            raise ValueError(f"option 'heights' must be orthometric or ellipsoidal, not {self.heights}")


@dataclass
class Indoor2dOptions:
    filename: str = "indoor.gpkg"  # GeoPackage with the layers rooms, walls and doors
    profile: str = "full"
    sensitive: str | None = None

    def __post_init__(self) -> None:
        _check_profile(self)


class _InteriorWriter(Stage):
    kind = "writer"
    whole_files = True
    interiors = True

    def filename(self) -> str:
        return self.options.filename

    def layer(self) -> str:
        return self.tag


class Interior3dWriter(_InteriorWriter):
    Options = Interior3dOptions


class Indoor2dWriter(_InteriorWriter):
    Options = Indoor2dOptions
