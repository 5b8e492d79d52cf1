"""A building's interior as 3D Tiles: one child tile per storey, so that a viewer can show a single storey.

The elements (rooms, walls, slabs, doors, windows, stairs, columns) are
features of :mod:`tiles.mesh` (glTF with ``EXT_mesh_features`` and
``EXT_structural_metadata``, property table class ``element``), placed on the
globe exactly as the other mesh tilesets are (:func:`tiles.mesh.place_meshes`).

Tree: a root without content whose children are the storeys, in level order,
each with its content ``storey_<level>.glb`` (level -1 is ``storey_m1.glb``).
Refinement is ``ADD`` and the storeys are leaves (geometricError 0): once a
viewer refines the root, every storey shows at once, and hiding one is the
viewer's choice (by tile, or by the feature property ``level``). The root's
geometricError follows the mesh tilesets' rule (an eighth of the building's
larger side), so an interior appears as close as a shell's leaf does.

The tileset's metadata lists the storeys (level, name, elevation, content
URI) for a viewer's storey picker; a storey with nothing to draw has no tile
and its URI is null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from py3dtiles.tileset.tile import Tile

from gis.errors import InputError
from tiles.geo import Placement
from tiles.mesh import ERROR_PER_SIDE, FeatureMeshes, place_meshes, placed_metadata
from tiles.tileset import Subtree, box, oriented_box, tileset_document, write_json

CLASS_NAME = "element"
REQUIRED = ("class", "level", "level_name", "floor_elevation", "global_id", "name", "use", "height", "area")
STOREY_COLUMNS = ("level", "name", "elevation")


def storey_uri(level: int) -> str:
    """The content file of a storey: ``storey_2.glb``, ``storey_m1.glb`` for level -1."""
    return f"storey_{'m' if level < 0 else ''}{abs(int(level))}.glb"


def write_storey_tileset(meshes: FeatureMeshes, storeys: pd.DataFrame, placement: Placement, out: Path,
                         metadata: dict[str, Any] | None = None) -> Subtree:
    """Write a building's elements as a 3D Tiles 1.1 tileset with one child tile per storey, in ``out`` (created).

    Parameters
    ----------
    meshes
        One feature per element, vertices in the placement's working CRS; ``properties`` has at least the
        columns of :data:`REQUIRED` (``level`` an integer storey index); other columns are written as they are.
    storeys
        One row per storey: ``level`` (int), ``name``, ``elevation`` (metres, the vertices' datum).
    placement
        How the working CRS becomes ECEF (the geoid applied explicitly).
    out
        The tileset's folder; must not exist (the caller makes it appear whole).
    metadata
        The caller's Lutèce metadata (product, lineage key...), completed with the storeys and the placement.

    Returns
    -------
    Subtree
        The tileset as a root tileset would reference it.

    Raises :class:`~gis.errors.InputError` when a column is missing, an element's level is not a storey,
    or the height model does not cover the building.
    """
    levels = _check(meshes, storeys)
    placed = place_meshes(meshes, placement)
    out.mkdir(parents=True)
    storeys = storeys.sort_values("level", kind="stable")
    children, listing = [], []
    drawn = np.diff(placed.starts) > 0  # features with at least one face
    for level, name, elevation in storeys[list(STOREY_COLUMNS)].itertuples(index=False):
        features = np.flatnonzero(levels == level)
        uri = storey_uri(level) if drawn[features].any() else None  # a storey with nothing to draw has no tile
        listing.append({"level": int(level), "name": str(name), "elevation": float(elevation), "uri": uri})
        if uri is not None:
            mins, maxs = placed.write_glb(features, out / uri, CLASS_NAME)
            children.append((mins, maxs, uri))
    mins = np.min([child[0] for child in children], axis=0)
    maxs = np.max([child[1] for child in children], axis=0)
    error = max(float((maxs - mins)[:2].max()) * ERROR_PER_SIDE, 0.5)
    root = Tile(geometric_error=error, bounding_volume=box(mins, maxs), refine_mode="ADD")
    root.transform = placed.frame.transform
    root.children = [Tile(geometric_error=0.0, bounding_volume=box(lo, hi), refine_mode="ADD", content_uri=uri)
                     for lo, hi, uri in children]
    described = placed_metadata(meshes, placement, {**(metadata or {}), "storeys": listing})
    write_json(tileset_document(root, error * 2, "1.1", described), out / "tileset.json")
    volume = oriented_box(placed.frame, mins, maxs).to_dict()["box"]
    return Subtree(uri=f"{out.name}/tileset.json", box=volume, geometric_error=error * 2, points=len(meshes))


def _check(meshes: FeatureMeshes, storeys: pd.DataFrame) -> np.ndarray:
    """The level of each feature, after checking the columns and that every level is a storey."""
    if len(meshes) == 0 or len(meshes.faces) == 0:
        raise InputError("interior: no element with a geometry to write")
    missing = [name for name in REQUIRED if name not in meshes.properties.columns]
    if missing:
        raise InputError(f"interior elements: no column {', '.join(missing)}; give {', '.join(REQUIRED)}")
    missing = [name for name in STOREY_COLUMNS if name not in storeys.columns]
    if missing:
        raise InputError(f"storeys: no column {', '.join(missing)}; give {', '.join(STOREY_COLUMNS)}")
    if storeys["level"].duplicated().any():
        raise InputError(f"storeys: level {storeys['level'][storeys['level'].duplicated()].iloc[0]} is given twice")
    levels = meshes.properties["level"].to_numpy()
    unknown = sorted(set(levels.tolist()) - set(storeys["level"].tolist()))
    if unknown:
        raise InputError(f"interior elements: level {unknown[0]} is not a storey; give one storey row per level")
    return levels
