"""Meshes with per-feature metadata as glTF, and a quadtree tileset of them: the one mesh writer.

Building shells use it now, building interiors will: any set of features
(one closed mesh and one row of attributes each) becomes 3D Tiles 1.1.

Content (:func:`encode_glb`): one triangle primitive per tile, y-up as glTF
wants, flat-shaded (each triangle its own three vertices, so that a wall's
normal is not averaged with its roof's); the feature of each vertex as the
``_FEATURE_ID_0`` attribute (``EXT_mesh_features``) pointing into a property
table (``EXT_structural_metadata``) that holds one row per feature: a viewer
clicks a triangle and reads its feature's attributes. Floats are FLOAT64,
integers INT32 (INT64 when a value needs it: CesiumJS reads INT64 as a
BigInt, which a style's ``${level} === 2`` never equals), text STRING; a
missing float is the class property's ``noData`` (:data:`NO_DATA`).

Tiling (:func:`write_mesh_tileset`): the features are placed in a local
east-north-up frame by :mod:`tiles.geo` (ECEF, the geoid applied explicitly,
the model recorded in the tileset's metadata), then split into a quadtree
over their centroids until a tile holds at most ``max_features``. Contents
are the leaves; an inner tile's geometricError is an eighth of its square's
side, halving at each level; leaves have 0. Given ``coarse`` meshes (the
same features drawn simply: buildings' LoD1.2 prisms), each inner tile gets
a content too: the coarse meshes of the ``max_features`` largest features
under it, so that a viewer far away draws the big buildings before it
reaches the leaves (refinement REPLACE: the children's contents take its
place).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pygltflib
from py3dtiles.tileset.tile import Tile

from tiles.geo import LocalFrame, Placement
from tiles.tileset import Subtree, box, oriented_box, tileset_document, write_json

INT32 = (-(2**31), 2**31 - 1)  # integers in this range are INT32: CesiumJS reads INT64 as a BigInt, never === 2
NO_DATA = -9999.0  # a missing float attribute (a property table cannot hold NaN as "no value")
ERROR_PER_SIDE = 1 / 8  # an inner tile's geometricError, as a fraction of its square's side
MAX_DEPTH = 16
_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942


@dataclass
class FeatureMeshes:
    """Features as triangle meshes in a working CRS, with one row of attributes each.

    Parameters
    ----------
    vertices
        (n, 3) float64 vertices of every feature, working CRS (heights as the lidar's).
    faces
        (m, 3) vertex indices, counter-clockwise seen from outside.
    face_feature
        (m,) the feature (row of ``properties``) of each face.
    properties
        One row per feature; columns of floats, integers or text.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_feature: np.ndarray
    properties: pd.DataFrame

    def __len__(self) -> int:
        return len(self.properties)


@dataclass
class MeshContent:
    """One decoded mesh content: positions in its tile's frame (z-up), faces, features and their table."""

    positions: np.ndarray
    faces: np.ndarray
    feature_ids: np.ndarray  # per vertex
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


# --- glTF -----------------------------------------------------------------------------------------


def encode_glb(vertices: np.ndarray, faces: np.ndarray, face_feature: np.ndarray, properties: pd.DataFrame,
               class_name: str = "feature") -> bytes:
    """A glb of triangles (z-up local coordinates) with feature ids and a property table of ``properties``.

    ``face_feature`` indexes the rows of ``properties``. Zero-area triangles are left out (they draw
    nothing and have no normal).
    """
    corners = vertices[faces]  # (m, 3, 3)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(cross, axis=1)
    drawn = length > 1e-9
    corners, cross, length, face_feature = corners[drawn], cross[drawn], length[drawn], face_feature[drawn]
    positions = _y_up(corners.reshape(-1, 3))
    normals = _y_up(np.repeat(cross / length[:, None], 3, axis=0))
    centre = (positions.min(axis=0) + positions.max(axis=0)) / 2 if len(positions) else np.zeros(3)
    builder = _GltfBuilder()
    attributes = pygltflib.Attributes()
    attributes.POSITION = builder.vertex_attribute((positions - centre).astype(np.float32), pygltflib.VEC3,
                                                   pygltflib.FLOAT, bounds=True)
    attributes.NORMAL = builder.vertex_attribute(normals.astype(np.float32), pygltflib.VEC3, pygltflib.FLOAT)
    ids = np.repeat(face_feature, 3)
    if len(properties) <= 65535:
        attributes._FEATURE_ID_0 = builder.vertex_attribute(ids.astype(np.uint16), pygltflib.SCALAR,
                                                            pygltflib.UNSIGNED_SHORT, stride=4)
    else:  # float32 holds integers exactly up to 2**24
        attributes._FEATURE_ID_0 = builder.vertex_attribute(ids.astype(np.float32), pygltflib.SCALAR,
                                                            pygltflib.FLOAT)
    schema, table = _property_table(builder, properties, class_name)
    primitive = pygltflib.Primitive(attributes=attributes, mode=pygltflib.TRIANGLES, extensions={
        "EXT_mesh_features": {"featureIds": [{"featureCount": int(len(properties)), "attribute": 0,
                                              "propertyTable": 0}]}})
    gltf = builder.gltf
    gltf.meshes.append(pygltflib.Mesh(primitives=[primitive]))
    gltf.nodes.append(pygltflib.Node(mesh=0, translation=centre.tolist()))
    gltf.extensions["EXT_structural_metadata"] = {"schema": schema, "propertyTables": [table]}
    gltf.extensionsUsed += ["EXT_mesh_features", "EXT_structural_metadata"]
    return builder.glb()


def _y_up(points: np.ndarray) -> np.ndarray:
    """glTF (x, y, z) = local (x, z, -y)."""
    return np.column_stack([points[:, 0], points[:, 2], -points[:, 1]])


class _GltfBuilder:
    """A glTF document and its one binary buffer, grown view by view."""

    def __init__(self) -> None:
        self.gltf = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0", generator="lutece"), scene=0,
                                    scenes=[pygltflib.Scene(nodes=[0])])
        self.blob = bytearray()

    def view(self, raw: bytes, target: int | None = None, stride: int | None = None) -> int:
        self.blob.extend(b"\0" * (-len(self.blob) % 8))  # 8: what property tables need, more than vertices do
        self.gltf.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(raw),
                                                          byteStride=stride, target=target))
        self.blob.extend(raw)
        return len(self.gltf.bufferViews) - 1

    def vertex_attribute(self, array: np.ndarray, accessor_type: str, component: int, stride: int | None = None,
                         bounds: bool = False) -> int:
        rows = array.reshape(len(array), -1)
        element = rows.dtype.itemsize * rows.shape[1]
        if stride is not None and stride > element:  # glTF aligns each vertex attribute element to 4 bytes
            padded = np.zeros((len(rows), stride), dtype=np.uint8)
            padded[:, :element] = rows.view(np.uint8).reshape(len(rows), element)
            raw = padded.tobytes()
        else:
            raw, stride = rows.tobytes(), None
        view = self.view(raw, pygltflib.ARRAY_BUFFER, stride)
        accessor = pygltflib.Accessor(bufferView=view, componentType=component, count=len(rows), type=accessor_type)
        if bounds:
            accessor.min, accessor.max = rows.min(axis=0).tolist(), rows.max(axis=0).tolist()
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1

    def glb(self) -> bytes:
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        self.gltf.buffers.append(pygltflib.Buffer(byteLength=len(self.blob)))
        document = json.loads(self.gltf.to_json())
        text = json.dumps(_without_empty(document), separators=(",", ":")).encode()
        text += b" " * (-len(text) % 4)
        total = 12 + 8 + len(text) + 8 + len(self.blob)
        return (struct.pack("<III", _GLB_MAGIC, 2, total) + struct.pack("<II", len(text), _JSON_CHUNK) + text
                + struct.pack("<II", len(self.blob), _BIN_CHUNK) + bytes(self.blob))


def _without_empty(value: Any) -> Any:
    """pygltflib's dict with its empty lists and dicts left out (glTF forbids empty arrays)."""
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


def _property_table(builder: _GltfBuilder, properties: pd.DataFrame, class_name: str) -> tuple[dict, dict]:
    """The schema and the property table of ``properties`` (one row per feature)."""
    definitions: dict[str, dict] = {}
    columns: dict[str, dict] = {}
    for name in properties.columns:
        values = properties[name]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
            array = values.to_numpy(np.int64)
            kind = "INT32" if len(array) == 0 or (array.min() >= INT32[0] and array.max() <= INT32[1]) else "INT64"
            definitions[name] = {"type": "SCALAR", "componentType": kind}
            columns[name] = {"values": builder.view(array.astype("<i4" if kind == "INT32" else "<i8").tobytes())}
        elif pd.api.types.is_float_dtype(values):
            array = values.to_numpy(np.float64)
            definitions[name] = {"type": "SCALAR", "componentType": "FLOAT64"}
            if np.isnan(array).any():
                definitions[name]["noData"] = NO_DATA
                array = np.where(np.isnan(array), NO_DATA, array)
            columns[name] = {"values": builder.view(array.tobytes())}
        else:
            encoded = [("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)).encode() for v in values]
            offsets = np.concatenate([[0], np.cumsum([len(v) for v in encoded])]).astype(np.uint32)
            definitions[name] = {"type": "STRING"}
            text = b"".join(encoded) or b"\0"  # a buffer view is never empty, even for a column of empty strings
            columns[name] = {"values": builder.view(text), "stringOffsets": builder.view(offsets.tobytes()),
                             "stringOffsetType": "UINT32"}
    schema = {"id": f"lutece_{class_name}", "classes": {class_name: {"properties": definitions}}}
    return schema, {"class": class_name, "count": int(len(properties)), "properties": columns}


def read_glb(raw: bytes) -> MeshContent:
    """Decode a glb written by :func:`encode_glb`: z-up positions (node translation applied), faces, the
    feature id of each vertex and the property table (``noData`` read back as NaN)."""
    length, kind = struct.unpack_from("<II", raw, 12)
    if struct.unpack_from("<I", raw)[0] != _GLB_MAGIC or kind != _JSON_CHUNK:
        raise ValueError("not a glb")
    document = json.loads(raw[20:20 + length])
    blob = raw[20 + length + 8:]
    views = document["bufferViews"]

    def view_bytes(index: int) -> bytes:
        view = views[index]
        start = view.get("byteOffset", 0)
        return blob[start:start + view["byteLength"]]

    def accessor(index: int) -> np.ndarray:
        acc = document["accessors"][index]
        dtype = np.dtype({5126: "<f4", 5123: "<u2", 5121: "u1", 5125: "<u4"}[acc["componentType"]])
        width = {"SCALAR": 1, "VEC3": 3}[acc["type"]]
        view = views[acc["bufferView"]]
        stride = view.get("byteStride") or dtype.itemsize * width
        data = np.frombuffer(view_bytes(acc["bufferView"]), np.uint8)
        rows = np.lib.stride_tricks.as_strided(data, (acc["count"], dtype.itemsize * width), (stride, 1))
        values = np.ascontiguousarray(rows).view(dtype)
        return values.ravel() if width == 1 else values.reshape(-1, width)

    primitive = document["meshes"][0]["primitives"][0]
    if primitive.get("mode", 4) != 4:
        raise ValueError("not a triangle mesh")
    positions = accessor(primitive["attributes"]["POSITION"]).astype(np.float64)
    positions += np.asarray(document["nodes"][0].get("translation", [0, 0, 0]))
    z_up = np.column_stack([positions[:, 0], -positions[:, 2], positions[:, 1]])
    ids = accessor(primitive["attributes"]["_FEATURE_ID_0"]).astype(np.int64)
    metadata = document["extensions"]["EXT_structural_metadata"]
    table = metadata["propertyTables"][0]
    definitions = metadata["schema"]["classes"][table["class"]]["properties"]
    frame = {}
    for name, column in table["properties"].items():
        definition = definitions[name]
        if definition["type"] == "STRING":
            offsets = np.frombuffer(view_bytes(column["stringOffsets"]), "<u4")
            text = view_bytes(column["values"])
            frame[name] = [text[offsets[i]:offsets[i + 1]].decode() for i in range(table["count"])]
        elif definition["componentType"] in ("INT32", "INT64"):
            dtype = "<i4" if definition["componentType"] == "INT32" else "<i8"
            frame[name] = np.frombuffer(view_bytes(column["values"]), dtype)[:table["count"]].astype(np.int64)
        else:
            values = np.frombuffer(view_bytes(column["values"]), "<f8")[:table["count"]].copy()
            if "noData" in definition:
                values[values == definition["noData"]] = np.nan
            frame[name] = values
    faces = np.arange(len(z_up)).reshape(-1, 3)
    return MeshContent(z_up, faces, ids, pd.DataFrame(frame))


def is_mesh_glb(path: Path) -> bool:
    """Whether a content file is a glb of triangles (this module's) rather than of points."""
    raw = Path(path).read_bytes()
    if raw[:4] != b"glTF":
        return False
    length = struct.unpack_from("<I", raw, 12)[0]
    document = json.loads(raw[20:20 + length])
    return document["meshes"][0]["primitives"][0].get("mode", 4) == 4


# --- the quadtree tileset ------------------------------------------------------------------------


@dataclass
class QuadNode:
    """A square of the quadtree: its features (leaves only), its children, its tight box."""

    name: str
    depth: int
    side: float
    features: np.ndarray
    children: list[QuadNode] = field(default_factory=list)
    mins: np.ndarray | None = None
    maxs: np.ndarray | None = None
    coarse: np.ndarray | None = None  # an inner tile's features drawn coarsely as its content

    @property
    def geometric_error(self) -> float:
        return 0.0 if not self.children else self.side * ERROR_PER_SIDE


def quadtree(centres: np.ndarray, max_features: int) -> QuadNode:
    """The quadtree of feature centres (n, 2): leaves hold at most ``max_features`` (unless at MAX_DEPTH)."""
    lo = centres.min(axis=0)
    side = float((centres.max(axis=0) - lo).max()) + 1e-6

    def split(index: np.ndarray, corner: np.ndarray, size: float, depth: int, name: str) -> QuadNode:
        node = QuadNode(name, depth, size, index)
        if len(index) <= max_features or depth >= MAX_DEPTH:
            return node
        half = size / 2
        east = centres[index, 0] >= corner[0] + half
        north = centres[index, 1] >= corner[1] + half
        for quadrant, (e, n) in enumerate(((False, False), (True, False), (False, True), (True, True))):
            part = index[(east == e) & (north == n)]
            if len(part):
                node.children.append(split(part, corner + half * np.array([e, n]), half, depth + 1,
                                           f"{name}{quadrant}"))
        node.features = np.empty(0, dtype=np.int64)
        return node

    return split(np.arange(len(centres)), lo, side, 0, "r")


@dataclass
class PlacedMeshes:
    """Features placed in a local east-north-up frame, their faces grouped by feature: what contents are cut from."""

    meshes: FeatureMeshes
    frame: LocalFrame
    local: np.ndarray  # (n, 3) vertices in ``frame``
    order: np.ndarray  # faces sorted by feature
    starts: np.ndarray  # the faces of feature f are order[starts[f]:starts[f + 1]]

    def write_glb(self, features: np.ndarray, path: Path, class_name: str) -> tuple[np.ndarray, np.ndarray]:
        """Write the (sorted) ``features`` as one glb content; returns its vertices' box in the frame."""
        meshes = self.meshes
        faces = np.concatenate([self.order[self.starts[f]:self.starts[f + 1]] for f in features])
        used, inverse = np.unique(meshes.faces[faces], return_inverse=True)
        vertices = self.local[used]
        face_feature = np.searchsorted(features, meshes.face_feature[faces])
        properties = meshes.properties.iloc[features].reset_index(drop=True)
        path.write_bytes(encode_glb(vertices, inverse.reshape(-1, 3), face_feature, properties, class_name))
        return vertices.min(axis=0), vertices.max(axis=0)


def place_meshes(meshes: FeatureMeshes, placement: Placement, frame: LocalFrame | None = None) -> PlacedMeshes:
    """``meshes`` in an east-north-up frame (by default at the centre of their box, at their median height).

    Raises :class:`~gis.errors.InputError` when the height model does not cover the features.
    """
    if len(meshes) == 0:
        raise ValueError("no feature to tile")
    x, y, z = meshes.vertices.T
    bounds = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
    placement.check_covers(bounds)
    frame = frame or placement.local_frame(bounds, height=float(np.median(z)))
    order = np.argsort(meshes.face_feature, kind="stable")
    starts = np.searchsorted(meshes.face_feature[order], np.arange(len(meshes) + 1))
    return PlacedMeshes(meshes, frame, placement.to_local(frame, x, y, z), order, starts)


def placed_metadata(meshes: FeatureMeshes, placement: Placement, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """A mesh tileset's Lutèce metadata: the caller's, the feature count, the CRS and the height model."""
    placed = {key: value for key, value in placement.model.describe().items() if value is not None}
    return {**(metadata or {}), "features": len(meshes), "crs": placement.crs.to_string(), **placed}


def write_mesh_tileset(meshes: FeatureMeshes, placement: Placement, out: Path, max_features: int = 500,
                       class_name: str = "building", metadata: dict[str, Any] | None = None,
                       coarse: FeatureMeshes | None = None) -> Subtree:
    """Write ``meshes`` as a 3D Tiles 1.1 tileset in the folder ``out`` (created; the caller makes it appear whole).

    ``coarse``: the same features (the same rows) drawn simply, for the inner tiles' contents. Returns
    the tileset as a root tileset would reference it. Raises :class:`~gis.errors.InputError` when the
    height model does not cover the features.
    """
    placed = place_meshes(meshes, placement)
    vertex_feature = np.empty(len(placed.local), dtype=np.int64)
    vertex_feature[meshes.faces.ravel()] = np.repeat(meshes.face_feature, 3)
    count = np.bincount(vertex_feature, minlength=len(meshes))
    centres = np.column_stack([np.bincount(vertex_feature, placed.local[:, axis], len(meshes)) for axis in (0, 1)])
    centres /= np.maximum(count, 1)[:, None]
    root = quadtree(centres, max_features)
    out.mkdir(parents=True)
    _write_node(root, placed, out, class_name)
    if coarse is not None:
        simple = place_meshes(coarse, placement, placed.frame)
        _write_coarse(root, simple, _extent(simple), max_features, out, class_name)
    tile = _tile(root)
    tile.transform = placed.frame.transform
    error = max(root.side * ERROR_PER_SIDE * 2, 1.0)
    document = tileset_document(tile, error, "1.1", placed_metadata(meshes, placement, metadata))
    write_json(document, out / "tileset.json")
    volume = oriented_box(placed.frame, root.mins, root.maxs).to_dict()["box"]
    return Subtree(uri=f"{out.name}/tileset.json", box=volume, geometric_error=error, points=len(meshes))


def _write_node(node: QuadNode, placed: PlacedMeshes, out: Path, class_name: str) -> None:
    if node.children:
        for child in node.children:
            _write_node(child, placed, out, class_name)
        node.mins = np.min([child.mins for child in node.children], axis=0)
        node.maxs = np.max([child.maxs for child in node.children], axis=0)
        return
    node.mins, node.maxs = placed.write_glb(node.features, out / f"{node.name}.glb", class_name)


def _extent(placed: PlacedMeshes) -> np.ndarray:
    """Each feature's size: the area of its box seen from above."""
    faces = placed.meshes.faces
    feature = np.repeat(placed.meshes.face_feature, 3)
    xy = placed.local[faces.ravel(), :2]
    lows = np.full((len(placed.meshes), 2), np.inf)
    highs = np.full((len(placed.meshes), 2), -np.inf)
    np.minimum.at(lows, feature, xy)
    np.maximum.at(highs, feature, xy)
    return np.prod(np.clip(highs - lows, 0, None), axis=1)


def _write_coarse(node: QuadNode, simple: PlacedMeshes, extent: np.ndarray, max_features: int, out: Path,
                  class_name: str) -> np.ndarray:
    """Give every inner tile the coarse meshes of its largest features; returns the features under ``node``."""
    if not node.children:
        return node.features
    under = np.concatenate([_write_coarse(child, simple, extent, max_features, out, class_name)
                            for child in node.children])
    node.coarse = np.sort(under[np.argsort(-extent[under], kind="stable")[:max_features]])
    mins, maxs = simple.write_glb(node.coarse, out / f"{node.name}.glb", class_name)
    node.mins = np.min([mins] + [child.mins for child in node.children], axis=0)  # children grew by theirs
    node.maxs = np.max([maxs] + [child.maxs for child in node.children], axis=0)
    return under


def _tile(node: QuadNode) -> Tile:
    content = f"{node.name}.glb" if not node.children or node.coarse is not None else None
    tile = Tile(geometric_error=node.geometric_error, bounding_volume=box(node.mins, node.maxs), refine_mode="REPLACE",
                content_uri=content)
    tile.children = [_tile(child) for child in node.children]
    return tile
