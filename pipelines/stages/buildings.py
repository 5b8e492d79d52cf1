"""Building stages: ``filters.buildings`` (reconstruction) and its writers (3D Tiles, CityJSON, a 2D layer).

Like ``writers.3dtiles``, they do not run tile by tile with a halo: a building needs all of its points at
once, so :mod:`pipelines.buildings` reads the job's points whole and runs them. Nothing is read before
the run; option values are checked when the pipeline is built.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from pipelines.stages.base import Stage, positive


@dataclass
class BuildingsOptions:
    footprints: str  # a vector file (GeoPackage...) of building footprints
    footprints_layer: str | None = None  # its layer (default: the file's only or first layer)
    id_field: str | None = None  # the footprints' id column (the cadastre id); default: the row number
    roof_percentile: float = 70.0
    ground_radius: float = 15.0
    edge_margin: float = 0.5
    min_points: int = 10
    step: float = 2.0
    cell: float = 1.0
    min_part_area: float = 20.0
    min_coverage: float = 0.8
    check_margin: float = 3.0  # metres: building points this close outside a footprint are reported
    max_shift: float = 3.0  # metres: the largest footprint shift looked for
    shift_gain: float = 0.03
    partial_share: float = 0.1
    check_footprints: bool = True  # false: skip the footprint checks (half the LoD1.2 time)
    max_rmse: float = 0.5
    lod: str | float = "2.2"  # the highest LoD to build: 1.2, 1.3 or 2.2 (a number in YAML is read as one)
    lidar_date: str | None = None  # the survey's date, written on every building

    def __post_init__(self) -> None:
        self.roof_options()  # refuses bad values now

    def roof_options(self):
        from pipelines.algorithms.roofs import RoofOptions

        names = {f.name for f in fields(RoofOptions)}
        return RoofOptions(**{name: getattr(self, name) for name in names})


class BuildingsFilter(Stage):
    kind = "filter"
    Options = BuildingsOptions
    whole_files = True
    buildings = True


@dataclass
class Buildings3dOptions:
    filename: str = "buildings_3dtiles"  # the tileset folder in the output
    max_features: int = 500  # most buildings in one tile
    heights: str = "orthometric"  # orthometric (the geoid is added) | ellipsoidal
    geoid: str | None = None  # geoid grid (default: EGM96 from proj-data)

    def __post_init__(self) -> None:
        positive("max_features", self.max_features)
        if self.heights not in ("orthometric", "ellipsoidal"):
            raise ValueError(f"option 'heights' must be orthometric or ellipsoidal, not {self.heights}")


@dataclass
class CityJsonOptions:
    filename: str = "buildings.city.json"


@dataclass
class Buildings2dOptions:
    filename: str = "buildings.gpkg"
    layer: str = "buildings"


class _BuildingsWriter(Stage):
    kind = "writer"
    whole_files = True
    buildings = True

    def filename(self) -> str:
        return self.options.filename

    def layer(self) -> str:
        return getattr(self.options, "layer", self.tag)


class Buildings3dWriter(_BuildingsWriter):
    Options = Buildings3dOptions


class CityJsonWriter(_BuildingsWriter):
    Options = CityJsonOptions


class Buildings2dWriter(_BuildingsWriter):
    Options = Buildings2dOptions
