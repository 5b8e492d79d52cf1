"""A building interior as the readers give it and the writers take it, whatever the plans were.

Both readers (IFC, indoor GeoJSON) produce an :class:`Interior`: its storeys,
one row per element with the attributes every product carries (the columns of
:data:`COLUMNS`) and its outline at floor level, and the elements' triangle
meshes in the working CRS. Writers only select and format: the 3D tiles and
the 2D layers hold the same rows, so their attributes agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

# Attributes of every element, in every product (tiles' property tables and 2D layers).
COLUMNS = ("class", "level", "level_name", "floor_elevation", "global_id", "name", "long_name", "use",
           "description", "height", "area")
TEXT = ("class", "level_name", "global_id", "name", "long_name", "use", "description")


@dataclass
class Skipped:
    """An element of the plans left out, and why (the run report lists them)."""

    global_id: str
    ifc_class: str
    reason: str


@dataclass
class Interior:
    """One building's interior.

    Attributes
    ----------
    storeys
        One row per storey: ``level`` (int, ground floor 0), ``name``, ``elevation`` (floor, working CRS heights).
    elements
        One row per element: the :data:`COLUMNS` and ``geometry``, its outline at floor level in the working
        CRS (rooms, walls, slabs: polygons; doors, windows: lines; None where none is made).
    vertices, faces, face_feature
        Triangles of every element (working CRS); ``face_feature`` is the element's row.
    """

    storeys: pd.DataFrame
    elements: gpd.GeoDataFrame
    vertices: np.ndarray
    faces: np.ndarray
    face_feature: np.ndarray
    crs: pyproj.CRS
    source: Path
    skipped: list[Skipped] = field(default_factory=list)
    georeferencing: dict = field(default_factory=dict)
    people: list[str] = field(default_factory=list)  # personal names the plans hold (never in an open product)

    def with_elements(self, elements: gpd.GeoDataFrame) -> Interior:
        """The same interior with other attribute values (the release profiles), geometry unchanged."""
        return Interior(self.storeys, elements, self.vertices, self.faces, self.face_feature, self.crs, self.source,
                        self.skipped, self.georeferencing, self.people)

    def meshes(self):
        """The elements as :class:`tiles.mesh.FeatureMeshes` (one feature per row, its attributes)."""
        from tiles.mesh import FeatureMeshes

        properties = self.elements.drop(columns=self.elements.geometry.name).reset_index(drop=True)
        return FeatureMeshes(self.vertices, self.faces, self.face_feature, properties)

    def rooms(self) -> gpd.GeoDataFrame:
        return self.layer("room")

    def layer(self, feature_class: str) -> gpd.GeoDataFrame:
        """The elements of one class that have an outline, as a 2D layer."""
        rows = self.elements[(self.elements["class"] == feature_class) & self.elements.geometry.notna()]
        return rows.reset_index(drop=True)


def element_frame(rows: list[dict], geometries: list, crs: pyproj.CRS) -> gpd.GeoDataFrame:
    """Rows of attributes and their outlines as the elements frame, columns in :data:`COLUMNS` order."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for name in TEXT:
        frame[name] = frame[name].fillna("").astype(str)
    frame["level"] = frame["level"].astype(np.int64)
    for name in ("floor_elevation", "height", "area"):
        frame[name] = frame[name].astype(np.float64)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometries, crs=crs), crs=crs)


def join_meshes(meshes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-element (vertices, faces) joined into one vertex array, one face array and each face's element."""
    offsets = np.cumsum([0] + [len(v) for v, _ in meshes])
    vertices = np.concatenate([v for v, _ in meshes]) if meshes else np.empty((0, 3))
    faces = np.concatenate([f + o for (_, f), o in zip(meshes, offsets)]) if meshes else np.empty((0, 3), np.int64)
    owner = np.concatenate([np.full(len(f), i) for i, (_, f) in enumerate(meshes)]) if meshes else np.empty(0, np.int64)
    return vertices, faces.astype(np.int64), owner.astype(np.int64)
