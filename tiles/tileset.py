"""tileset.json: bounding volumes, geometric errors, joining subtrees, and the structural checks.

Written with py3dtiles' :class:`~py3dtiles.tileset.tile.Tile` and
:class:`~py3dtiles.tileset.bounding_volume_box.BoundingVolumeBox`; the tileset
document itself is assembled here (py3dtiles' ``TileSet.to_dict`` would grow
every oriented box into an axis-aligned one around its children).

:func:`check_tileset` walks a tileset, external tilesets included, decodes
every content and reports what breaks the structure a client relies on; the
tests and the pipeline's writer both call it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from py3dtiles.tileset.bounding_volume_box import BoundingVolumeBox
from py3dtiles.tileset.tile import Tile

from tiles.geo import LocalFrame

SPECS = ("1.0", "1.1")
TOLERANCE = 0.002  # metres: a point or a child volume may exceed its box by this much (float32 rounding)
# Y-up glTF content is turned z-up by 3D Tiles clients (3D Tiles 1.1, glTF transforms).
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])


def box(mins: np.ndarray, maxs: np.ndarray) -> BoundingVolumeBox:
    """An axis-aligned box of the tile's frame, never flat (a 3D Tiles box needs three non-zero axes)."""
    mins, maxs = np.asarray(mins, dtype=float), np.asarray(maxs, dtype=float)
    grow = np.where(maxs - mins < TOLERANCE, TOLERANCE / 2, 0.0)
    return BoundingVolumeBox.from_mins_maxs(np.concatenate([mins - grow, maxs + grow]))


def oriented_box(frame: LocalFrame, mins: np.ndarray, maxs: np.ndarray) -> BoundingVolumeBox:
    """The ECEF box (centre and three half-axes) of an axis-aligned box of a local frame."""
    local = box(mins, maxs)._box
    centre = frame.to_ecef(local[None, :3])[0]
    axes = local[3:].reshape(3, 3) @ frame.rotation  # each local half-axis, in ECEF
    return BoundingVolumeBox.from_list(np.concatenate([centre, axes.ravel()]))


def box_corners(values: list[float] | np.ndarray) -> np.ndarray:
    """The eight corners (8, 3) of a 3D Tiles ``box``."""
    values = np.asarray(values, dtype=float)
    centre, axes = values[:3], values[3:].reshape(3, 3)
    signs = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], dtype=float)
    return centre + signs @ axes


def inside_box(points: np.ndarray, values: list[float] | np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
    """Which points lie inside a 3D Tiles ``box`` (within ``tolerance`` metres)."""
    values = np.asarray(values, dtype=float)
    centre, axes = values[:3], values[3:].reshape(3, 3)
    lengths = np.linalg.norm(axes, axis=1)
    units = axes / np.where(lengths > 0, lengths, 1.0)[:, None]
    along = np.abs((points - centre) @ units.T)
    return np.all(along <= lengths + tolerance, axis=1)


def tileset_document(root: Tile, geometric_error: float, spec: str, metadata: dict[str, Any],
                     extensions: list[str] | None = None) -> dict[str, Any]:
    """The tileset.json of ``root``, with Lutèce's metadata (placement, product, lineage key).

    3D Tiles 1.1 carries it as tileset metadata (a schema and its ``tileset`` class); both versions
    also carry it in ``asset.extras.lutece``.
    """
    if spec not in SPECS:
        raise ValueError(f"3D Tiles version {spec}: use one of {', '.join(SPECS)}")
    document: dict[str, Any] = {
        "asset": {"version": spec, "generator": "lutece", "extras": {"lutece": metadata}},
        "geometricError": geometric_error,
        "root": root.to_dict(),
    }
    if spec == "1.1":
        names = sorted(key for key, value in metadata.items() if isinstance(value, (str, int, float)))
        document["schema"] = {"id": "lutece", "classes": {"tileset": {"properties": {
            name: {"type": "STRING"} for name in names}}}}
        document["metadata"] = {"class": "tileset", "properties": {name: str(metadata[name]) for name in names}}
    if extensions:
        document["extensionsUsed"] = sorted(extensions)
    return document


def write_json(document: dict[str, Any], path: Path) -> None:
    """Write a JSON document whole or not at all."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
    os.replace(partial, path)


@dataclass(frozen=True)
class Subtree:
    """A tileset joined under a root: its URI (relative to the root), ECEF box and geometric error."""

    uri: str
    box: list[float]
    geometric_error: float
    points: int


def join(subtrees: list[Subtree], frame: LocalFrame, spec: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """A root tileset whose children are the subtrees' own tilesets (external tilesets).

    The root's box is axis-aligned in ``frame`` and holds every subtree's box, so that one subtree
    can be rebuilt alone and the root written again.
    """
    corners = np.concatenate([frame.from_ecef(box_corners(sub.box)) for sub in subtrees])
    root = Tile(geometric_error=max(sub.geometric_error for sub in subtrees) * 2,
                bounding_volume=oriented_box(frame, corners.min(axis=0), corners.max(axis=0)))
    for sub in subtrees:
        child = Tile(geometric_error=sub.geometric_error, bounding_volume=BoundingVolumeBox.from_list(sub.box),
                     content_uri=sub.uri)
        root.children.append(child)
    return tileset_document(root, root.geometric_error * 2, spec, metadata)


# --- checks -------------------------------------------------------------------------------------


@dataclass
class Content:
    """One decoded content: its file, its points in ECEF and its per-point attributes."""

    path: Path
    ecef: np.ndarray
    attributes: dict[str, np.ndarray]
    box: list[float]
    to_ecef: np.ndarray


@dataclass
class Report:
    """What :func:`check_tileset` found: the problems (none when valid) and what it counted."""

    problems: list[str] = field(default_factory=list)
    tiles: int = 0
    contents: int = 0
    points: int = 0
    max_depth: int = 0


def check_tileset(path: Path, contents: list[Content] | None = None) -> Report:
    """Check a tileset.json and everything it references; decoded contents go to ``contents``.

    Checks: required properties; geometricError never growing with depth, halving from a parent with
    content to a child with content that is not a leaf; every content file present, decodable, not
    empty and inside its tile's bounding volume; every child volume inside its parent's.
    """
    report = Report()
    _check_document(Path(path), np.identity(4), None, 0, report, contents)
    return report


def _check_document(path: Path, transform: np.ndarray, parent: tuple[list[float], np.ndarray, float] | None,
                    depth: int, report: Report, contents: list[Content] | None) -> None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report.problems.append(f"{path}: unreadable tileset ({exc})")
        return
    for key in ("asset", "geometricError", "root"):
        if key not in document:
            report.problems.append(f"{path}: no '{key}'")
    if document.get("asset", {}).get("version") not in SPECS:
        report.problems.append(f"{path}: asset.version is {document.get('asset', {}).get('version')!r}")
    if "root" in document:
        _check_tile(document["root"], path.parent, transform, parent, depth, f"{path.name}:root", report, contents)


def _check_tile(tile: dict, folder: Path, transform: np.ndarray, parent, depth: int, where: str,
                report: Report, contents: list[Content] | None) -> None:
    report.tiles += 1
    report.max_depth = max(report.max_depth, depth)
    for key in ("boundingVolume", "geometricError"):
        if key not in tile:
            report.problems.append(f"{where}: no '{key}'")
            return
    if "box" not in tile["boundingVolume"]:
        report.problems.append(f"{where}: only 'box' bounding volumes are checked")
        return
    if "transform" in tile:
        transform = transform @ np.array(tile["transform"]).reshape(4, 4, order="F")
    volume = tile["boundingVolume"]["box"]
    error = float(tile["geometricError"])
    if parent is not None:
        parent_box, parent_transform, parent_error = parent
        if error > parent_error:
            report.problems.append(f"{where}: geometricError {error} above its parent's {parent_error}")
        corners = _apply(transform, box_corners(volume))
        in_parent = inside_box(_apply(np.linalg.inv(parent_transform), corners), parent_box)
        if not in_parent.all():
            report.problems.append(f"{where}: its bounding volume is not inside its parent's")
    uri = tile.get("content", {}).get("uri")
    if uri is not None:
        content_path = folder / uri
        if not content_path.is_file():
            report.problems.append(f"{where}: content {uri} does not exist")
        elif content_path.suffix == ".json":
            _check_document(content_path, transform, (volume, transform, error), depth + 1, report, contents)
        else:
            _check_content(content_path, volume, transform, where, report, contents)
    for index, child in enumerate(tile.get("children", [])):
        _check_tile(child, folder, transform, (volume, transform, error), depth + 1, f"{where}/{index}", report,
                    contents)


def _check_content(path: Path, volume: list[float], transform: np.ndarray, where: str, report: Report,
                   contents: list[Content] | None) -> None:
    try:
        local, attributes = read_any_content(path)
    except Exception as exc:  # any decoding failure is a finding, not a crash of the check
        report.problems.append(f"{where}: content {path.name} cannot be decoded ({exc})")
        return
    report.contents += 1
    report.points += len(local)
    if len(local) == 0:
        report.problems.append(f"{where}: content {path.name} is empty")
    outside = ~inside_box(local, volume)
    if outside.any():
        report.problems.append(f"{where}: {int(outside.sum())} points of {path.name} outside its bounding volume")
    if contents is not None:
        contents.append(Content(path, _apply(transform, local), attributes, volume, transform))


def read_any_content(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The vertices or points of a content file in its tile's frame (z-up) and their per-vertex attributes."""
    from tiles.mesh import is_mesh_glb, read_glb  # content formats live with their writers
    from tiles.pointcloud import read_content

    if is_mesh_glb(path):
        mesh = read_glb(Path(path).read_bytes())
        return mesh.positions, {"feature_id": mesh.feature_ids}
    return read_content(path)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def iter_tiles(tile: dict) -> Iterator[tuple[dict, int]]:
    """Every tile of a tileset document's tree with its depth."""
    stack = [(tile, 0)]
    while stack:
        current, depth = stack.pop()
        yield current, depth
        stack.extend((child, depth + 1) for child in current.get("children", []))
