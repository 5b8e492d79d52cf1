"""Point clouds to 3D Tiles: an octree of bounded tiles, contents written through py3dtiles.

Each point is written once (additive refinement): a tile keeps one point per
cell of a 128 x 128 x 128 grid over its cube, at most ``max_points``, and
hands the others to its eight children; a tile with at most ``max_points``
left keeps them all. The geometric error of a tile is its grid's cell size,
so it halves with each level; leaves have 0.

The octree is built on one sort of the points' Morton codes: each tile is a
contiguous range of the sorted points, its children sub-ranges, and the first
point of each grid cell is found where the code's leading bits change.

Content (one file per tile, positions relative to the tile's box):

- 3D Tiles 1.1: glTF 2.0 binary (.glb), points, y-up as glTF wants, positions
  as unsigned 16-bit integers with a node scale (KHR_mesh_quantization) when a
  step of at most ``QUANTISE_STEP`` covers the tile, else float32; RGB as
  COLOR_0; classification, intensity and return number as vertex attributes
  described by EXT_structural_metadata (a ``point`` class and a property
  attribute), classification also the EXT_mesh_features feature ID. Bytes per
  point: 8 (quantised position, 4-byte aligned) or 12, + 4 RGB, + 4 for each of
  the three attributes (glTF aligns every vertex attribute element to 4 bytes):
  24 quantised with RGB, 28 in float.
- 3D Tiles 1.0: pnts, POSITION_QUANTIZED (6 bytes) or POSITION (12), RGB (3),
  and a binary batch table with classification (1), intensity (2) and return
  number (1): 13 bytes per point quantised with RGB.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import laspy
import numpy as np
import pygltflib
import pyproj
from py3dtiles.tileset.content import Pnts
from py3dtiles.tileset.content.batch_table import BatchTable
from py3dtiles.tileset.content.gltf import Gltf
from py3dtiles.tileset.content.pnts import PntsBody, PntsHeader
from py3dtiles.tileset.content.pnts_feature_table import (
    PntsFeatureTable,
    PntsFeatureTableBody,
    PntsFeatureTableHeader,
    SemanticPoint,
)
from py3dtiles.tileset.tile import Tile

from gis.errors import InputError
from tiles.geo import LocalFrame, Placement
from tiles.survey import survey_crs
from tiles.tileset import Y_UP_TO_Z_UP, Subtree, box, oriented_box, tileset_document, write_json

GRID_BITS = 7  # a tile's sampling grid: 2**7 = 128 cells a side
MORTON_BITS = 21  # per axis: 63 bits of Morton code
QUANTISE_STEP = 0.001  # metres: positions become 16-bit integers when this step spans the tile
ATTRIBUTES = ("classification", "intensity", "return_number")
ATTRIBUTE_TYPES = {"classification": "u1", "intensity": "<u2", "return_number": "u1"}
METADATA_TYPES = {"u1": "UINT8", "<u2": "UINT16"}
# The layers of a LAZ 1.4 file the tiler reads; the others (GPS time, scan angle...) are never decompressed.
DECODED = (laspy.DecompressionSelection.XY_RETURNS_CHANNEL | laspy.DecompressionSelection.Z
           | laspy.DecompressionSelection.CLASSIFICATION | laspy.DecompressionSelection.INTENSITY
           | laspy.DecompressionSelection.RGB)


@dataclass
class PointCloud:
    """Points in a working CRS (metres, heights in metres) with the attributes the tiles carry."""

    xyz: np.ndarray  # (n, 3) float64
    classification: np.ndarray  # uint8, ASPRS
    intensity: np.ndarray  # uint16
    return_number: np.ndarray  # uint8
    rgb: np.ndarray | None  # (n, 3) uint8, or None when the survey has no colours
    crs: pyproj.CRS

    def __len__(self) -> int:
        return len(self.xyz)


def read_cloud(path: Path, crs_in: str | None = None) -> PointCloud:
    """Read a LAS/LAZ file with the attributes the tiles carry; one clear error for what cannot be tiled."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such lidar file")
    try:
        reader = laspy.open(path, decompression_selection=DECODED)
    except (laspy.errors.LaspyException, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable LAS/LAZ file ({exc}); check the file or re-export it") from None
    with reader:
        header = reader.header
        survey = survey_crs(header, path, crs_in)
        count = header.point_count
        if count == 0:
            raise InputError(f"{path}: the file holds no points; remove it from the job")
        coloured = "red" in header.point_format.dimension_names
        cloud = PointCloud(xyz=np.empty((count, 3)), classification=np.empty(count, np.uint8),
                           intensity=np.empty(count, np.uint16), return_number=np.empty(count, np.uint8),
                           rgb=np.empty((count, 3), np.uint16) if coloured else None, crs=survey.crs)
        _read_points(reader, path, cloud)  # chunk by chunk: never the whole point record in memory
    for axis, factor in enumerate((survey.xy_to_metres, survey.xy_to_metres, survey.z_to_metres)):
        if factor != 1.0:  # a survey in feet: the same projection, in metres (tiles.survey)
            cloud.xyz[:, axis] *= factor
    if not np.isfinite(cloud.xyz).all():
        raise InputError(f"{path}: some coordinates are NaN; check the header's scales and offsets")
    if cloud.rgb is not None:  # LAS colours are 16-bit; 8-bit ones written as they are stay so
        cloud.rgb = (cloud.rgb >> 8 if cloud.rgb.max() > 255 else cloud.rgb).astype(np.uint8)
    return cloud


def _read_points(reader: laspy.LasReader, path: Path, cloud: PointCloud) -> None:
    header, start = reader.header, 0
    try:
        for chunk in reader.chunk_iterator(1_000_000):
            end = start + len(chunk)
            if end > len(cloud):
                break
            for axis, name in enumerate("XYZ"):
                column = cloud.xyz[start:end, axis]
                np.multiply(chunk[name], header.scales[axis], out=column)
                column += header.offsets[axis]
            for name in ATTRIBUTES:
                getattr(cloud, name)[start:end] = chunk[name]
            if cloud.rgb is not None:
                for band, name in enumerate(("red", "green", "blue")):
                    cloud.rgb[start:end, band] = chunk[name]
            start = end
    except (laspy.errors.LaspyException, ValueError, OSError, RuntimeError) as exc:
        raise InputError(f"{path}: the point records cannot be read after {start} points ({exc}); "
                         "the file is truncated or corrupt: re-download or re-export it") from None
    if start != len(cloud):
        raise InputError(f"{path}: the header announces {len(cloud)} points but the file holds another number; "
                         "the file is truncated or its header is wrong: re-export it")


# --- the octree -----------------------------------------------------------------------------------


@dataclass
class Node:
    """One tile: its Morton prefix, its points (indices in the sorted order) and its children."""

    name: str
    depth: int
    points: np.ndarray
    mins: np.ndarray  # of the whole subtree, local frame
    maxs: np.ndarray
    geometric_error: float
    children: list[Node] = field(default_factory=list)


def build_octree(local: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray, Node]:
    """The octree of points in a local frame: (the order sorting the points, their sorted coordinates
    (3, n), the root node).

    Node indices refer to the sorted order. Every point is in exactly one node; no node holds more
    than ``max_points``.
    """
    lo = local.min(axis=0)
    size = float((local.max(axis=0) - lo).max()) * (1 + 1e-9) + 1e-3
    scale = (1 << MORTON_BITS) / size
    codes = np.zeros(len(local), dtype=np.uint64)
    for axis in range(3):
        cell = ((local[:, axis] - lo[axis]) * scale).astype(np.uint64)  # >= 0: truncation is the floor
        np.minimum(cell, np.uint64((1 << MORTON_BITS) - 1), out=cell)
        codes |= _spread(cell) << np.uint64(axis)
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    columns = np.empty((3, len(local)), dtype=local.dtype)  # one contiguous row per axis: fast range extremes
    for axis in range(3):
        np.take(local[:, axis], order, out=columns[axis])
    taken = np.zeros(len(codes), dtype=bool)
    root = _node(codes, columns, taken, 0, len(codes), 0, "r", size, max_points)
    return order, columns, root


def _node(codes, columns, taken, start, stop, depth, name, size, max_points) -> Node:
    span = slice(start, stop)
    free = start + np.flatnonzero(~taken[span])
    error = size / (1 << GRID_BITS) / (1 << depth)
    mins, maxs = columns[:, span].min(axis=1), columns[:, span].max(axis=1)
    if len(free) <= max_points:
        taken[free] = True
        return Node(name, depth, free, mins, maxs, 0.0)
    if depth + GRID_BITS >= MORTON_BITS:  # cells this small: points repeat; split in chunks, same box
        node = Node(name, depth, free[:max_points], mins, maxs, error)
        taken[free[:max_points]] = True
        rest = free[max_points:]
        for index, chunk in enumerate(range(0, len(rest), max_points)):
            part = rest[chunk:chunk + max_points]
            taken[part] = True
            node.children.append(Node(f"{name}c{index}", depth + 1, part, columns[:, part].min(axis=1),
                                      columns[:, part].max(axis=1), 0.0))
        return node
    shift = np.uint64(3 * (MORTON_BITS - depth - GRID_BITS))
    cell = codes[free] >> shift
    first = np.ones(len(free), dtype=bool)
    first[1:] = cell[1:] != cell[:-1]
    kept = free[first]
    if len(kept) > max_points:
        kept = np.sort(np.random.default_rng(len(free)).choice(kept, max_points, replace=False))
    taken[kept] = True
    node = Node(name, depth, kept, mins, maxs, error)
    child_shift = np.uint64(3 * (MORTON_BITS - depth - 1))
    octant = (codes[span] >> child_shift) & np.uint64(7)
    bounds = start + np.searchsorted(octant, np.arange(9, dtype=np.uint64))
    for child in range(8):
        if bounds[child] < bounds[child + 1] and not taken[bounds[child]:bounds[child + 1]].all():
            node.children.append(_node(codes, columns, taken, int(bounds[child]), int(bounds[child + 1]), depth + 1,
                                       f"{name}{child}", size, max_points))
    return node


def _spread(values: np.ndarray) -> np.ndarray:
    """Spread 21 bits so that two zero bits separate each (Morton interleaving)."""
    v = values & np.uint64(0x1FFFFF)
    v = (v | (v << np.uint64(32))) & np.uint64(0x1F00000000FFFF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x1F0000FF0000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x100F00F00F00F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x10C30C30C30C30C3)
    return (v | (v << np.uint64(2))) & np.uint64(0x1249249249249249)


def iter_nodes(root: Node):
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children)


# --- contents -------------------------------------------------------------------------------------


@dataclass
class TileData:
    """The points of one tile, relative to its box: what a content file holds."""

    positions: np.ndarray  # (n, 3) float64, local frame
    attributes: dict[str, np.ndarray]
    rgb: np.ndarray | None


def write_content(data: TileData, mins: np.ndarray, maxs: np.ndarray, path: Path, spec: str) -> int:
    """Write one tile's content (.glb for 1.1, .pnts for 1.0); returns its size in bytes."""
    payload = _glb(data, mins, maxs) if spec == "1.1" else _pnts(data, mins, maxs)
    path.write_bytes(payload)
    return len(payload)


def _quantisation(mins: np.ndarray, maxs: np.ndarray) -> np.ndarray | None:
    """The per-axis step of 16-bit positions, or None when a step above QUANTISE_STEP would be needed."""
    step = np.maximum(maxs - mins, 1e-6) / 65535.0
    return step if step.max() <= QUANTISE_STEP else None


def _glb(data: TileData, mins: np.ndarray, maxs: np.ndarray) -> bytes:
    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0", generator="lutece"), scene=0,
                           scenes=[pygltflib.Scene(nodes=[0])])
    blob = bytearray()

    def add(array: np.ndarray, accessor_type: str, component: int, normalized: bool = False,
            stride: int | None = None, bounds: bool = False) -> int:
        rows = array.reshape(len(array), -1)
        element = rows.dtype.itemsize * rows.shape[1]
        if stride is not None and stride > element:  # pad each element to the 4-byte alignment glTF requires
            padded = np.zeros((len(rows), stride), dtype=np.uint8)
            padded[:, :element] = rows.view(np.uint8).reshape(len(rows), element)
            raw = padded.tobytes()
        else:
            raw, stride = rows.tobytes(), None
        gltf.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(raw),
                                                     byteStride=stride, target=pygltflib.ARRAY_BUFFER))
        blob.extend(raw)
        blob.extend(b"\0" * (-len(blob) % 4))
        accessor = pygltflib.Accessor(bufferView=len(gltf.bufferViews) - 1, componentType=component,
                                      count=len(rows), type=accessor_type, normalized=normalized or None)
        if bounds:
            accessor.min = rows.min(axis=0).tolist()
            accessor.max = rows.max(axis=0).tolist()
        gltf.accessors.append(accessor)
        return len(gltf.accessors) - 1

    # y-up: glTF (x, y, z) = tile (x, z, -y)
    y_up = np.column_stack([data.positions[:, 0], data.positions[:, 2], -data.positions[:, 1]])
    corner = np.array([mins[0], mins[2], -maxs[1]])
    step = _quantisation(mins, maxs)
    node = pygltflib.Node(mesh=0)
    attributes = pygltflib.Attributes()
    if step is not None:
        step_y_up = np.array([step[0], step[2], step[1]])
        quantised = np.rint((y_up - corner) / step_y_up).clip(0, 65535).astype(np.uint16)
        attributes.POSITION = add(quantised, pygltflib.VEC3, pygltflib.UNSIGNED_SHORT, stride=8, bounds=True)
        node.translation, node.scale = corner.tolist(), step_y_up.tolist()
        gltf.extensionsUsed.append("KHR_mesh_quantization")
        gltf.extensionsRequired.append("KHR_mesh_quantization")
    else:
        centre = (mins + maxs) / 2
        centre_y_up = np.array([centre[0], centre[2], -centre[1]])
        attributes.POSITION = add((y_up - centre_y_up).astype(np.float32), pygltflib.VEC3, pygltflib.FLOAT,
                                  bounds=True)
        node.translation = centre_y_up.tolist()
    if data.rgb is not None:
        attributes.COLOR_0 = add(data.rgb, pygltflib.VEC3, pygltflib.UNSIGNED_BYTE, normalized=True, stride=4)
    properties = {}
    for name in ATTRIBUTES:
        array = data.attributes[name]
        component = pygltflib.UNSIGNED_BYTE if array.dtype.itemsize == 1 else pygltflib.UNSIGNED_SHORT
        semantic = f"_{name.upper()}"
        setattr(attributes, semantic, add(array, pygltflib.SCALAR, component, stride=4))
        properties[name] = {"attribute": semantic}
    setattr(attributes, "_FEATURE_ID_0", getattr(attributes, "_CLASSIFICATION"))
    classes = np.unique(data.attributes["classification"])
    primitive = pygltflib.Primitive(attributes=attributes, mode=pygltflib.POINTS, extensions={
        "EXT_mesh_features": {"featureIds": [{"featureCount": int(len(classes)), "attribute": 0,
                                              "label": "classification"}]},
        "EXT_structural_metadata": {"propertyAttributes": [0]}})
    gltf.meshes.append(pygltflib.Mesh(primitives=[primitive]))
    gltf.nodes.append(node)
    gltf.extensions["EXT_structural_metadata"] = {
        "schema": {"id": "lutece_points", "classes": {"point": {"name": "Lidar point", "properties": {
            name: {"type": "SCALAR", "componentType": METADATA_TYPES[ATTRIBUTE_TYPES[name]]}
            for name in ATTRIBUTES}}}},
        "propertyAttributes": [{"class": "point", "properties": properties}]}
    gltf.extensionsUsed += ["EXT_mesh_features", "EXT_structural_metadata"]
    gltf.buffers.append(pygltflib.Buffer(byteLength=len(blob)))
    gltf.set_binary_blob(bytes(blob))
    return Gltf(gltf).to_array().tobytes()


def _pnts(data: TileData, mins: np.ndarray, maxs: np.ndarray) -> bytes:
    count = len(data.positions)
    step = _quantisation(mins, maxs)
    colour = SemanticPoint.RGB if data.rgb is not None else None
    if step is not None:
        scale = step * 65535.0
        quantised = np.rint((data.positions - mins) / step).clip(0, 65535).astype(np.uint16)
        header = PntsFeatureTableHeader.from_semantic(SemanticPoint.POSITION_QUANTIZED, colour, None, count,
                                                      quantized_volume_offset=mins.tolist(),
                                                      quantized_volume_scale=scale.tolist())
        positions = quantised.ravel()
    else:
        centre = (mins + maxs) / 2
        header = PntsFeatureTableHeader.from_semantic(SemanticPoint.POSITION, colour, None, count)
        header.rtc = tuple(float(v) for v in centre)
        positions = (data.positions - centre).astype(np.float32).ravel()
    table = PntsFeatureTable()
    table.header = header
    table.body = PntsFeatureTableBody(positions=positions,
                                      color=None if data.rgb is None else data.rgb.ravel())
    batch = BatchTable()
    # 16-bit first: py3dtiles 12 pads a property to its item size in the body but not in the offsets it
    # records, so a 16-bit property after an odd number of bytes would be misread
    for name in sorted(ATTRIBUTES, key=lambda name: -data.attributes[name].dtype.itemsize):
        batch.add_property_as_binary(name, data.attributes[name], "SCALAR")
    body = PntsBody()
    body.feature_table, body.batch_table = table, batch
    pnts = Pnts(PntsHeader(), body)
    pnts.sync()
    return pnts.to_array().tobytes()


def read_content(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Points of a content file in its tile's frame (z-up), and its per-point attributes."""
    raw = Path(path).read_bytes()
    if raw[:4] == b"glTF":
        return _read_glb(raw)
    if raw[:4] == b"pnts":
        return _read_pnts(raw)
    raise ValueError(f"{path}: neither glb nor pnts")


def _read_glb(raw: bytes) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    gltf = Gltf.from_bytes(raw)._gltf
    blob = gltf.binary_blob()
    primitive = gltf.meshes[0].primitives[0]
    positions = _accessor(gltf, blob, primitive.attributes.POSITION).astype(np.float64)
    node = gltf.nodes[0]
    if node.scale is not None:
        positions = positions * np.asarray(node.scale)
    if node.translation is not None:
        positions = positions + np.asarray(node.translation)
    z_up = positions @ Y_UP_TO_Z_UP[:3, :3].T
    attributes = {name: _accessor(gltf, blob, getattr(primitive.attributes, f"_{name.upper()}"))
                  for name in ATTRIBUTES}
    if primitive.attributes.COLOR_0 is not None:
        attributes["rgb"] = _accessor(gltf, blob, primitive.attributes.COLOR_0)
    return z_up, attributes


def _accessor(gltf: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    """An accessor's values, honouring the buffer view's byteStride (py3dtiles 12's reader ignores it)."""
    accessor = gltf.accessors[index]
    view = gltf.bufferViews[accessor.bufferView]
    kinds = {pygltflib.UNSIGNED_BYTE: np.uint8, pygltflib.UNSIGNED_SHORT: np.uint16, pygltflib.FLOAT: np.float32}
    width = {"SCALAR": 1, "VEC3": 3}[accessor.type]
    dtype = np.dtype(kinds[accessor.componentType])
    stride = view.byteStride or dtype.itemsize * width
    start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
    rows = np.frombuffer(blob, np.uint8, stride * (accessor.count - 1) + dtype.itemsize * width, start)
    strided = np.lib.stride_tricks.as_strided(rows, (accessor.count, dtype.itemsize * width), (stride, 1))
    values = np.ascontiguousarray(strided).view(dtype)
    return values.ravel() if width == 1 else values.reshape(-1, width)


def _read_pnts(raw: bytes) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Decode a pnts from its bytes as the 3D Tiles 1.0 spec lays them out (py3dtiles 12's reader drops
    QUANTIZED_VOLUME_SCALE)."""
    _, _, _, ft_json, ft_bin, bt_json, bt_bin = struct.unpack_from("<4sIIIIII", raw)
    at = 28
    table = json.loads(raw[at:at + ft_json])
    body = raw[at + ft_json:at + ft_json + ft_bin]
    batch = json.loads(raw[at + ft_json + ft_bin:at + ft_json + ft_bin + bt_json] or b"{}")
    batch_body = raw[at + ft_json + ft_bin + bt_json:at + ft_json + ft_bin + bt_json + bt_bin]
    count = table["POINTS_LENGTH"]
    if "POSITION_QUANTIZED" in table:
        quantised = np.frombuffer(body, np.uint16, count * 3, table["POSITION_QUANTIZED"]["byteOffset"])
        positions = (np.asarray(table["QUANTIZED_VOLUME_OFFSET"])
                     + quantised.reshape(-1, 3) * np.asarray(table["QUANTIZED_VOLUME_SCALE"]) / 65535.0)
    else:
        positions = np.frombuffer(body, np.float32, count * 3, table["POSITION"]["byteOffset"]).reshape(-1, 3)
        positions = positions.astype(np.float64)
    positions = positions + np.asarray(table.get("RTC_CENTER", [0.0, 0.0, 0.0]))
    attributes = {}
    kinds = {"UNSIGNED_BYTE": np.uint8, "UNSIGNED_SHORT": np.uint16, "UNSIGNED_INT": np.uint32}
    for name, spec in batch.items():
        attributes[name] = np.frombuffer(batch_body, kinds[spec["componentType"]], count, spec["byteOffset"])
    if "RGB" in table:
        attributes["rgb"] = np.frombuffer(body, np.uint8, count * 3, table["RGB"]["byteOffset"]).reshape(-1, 3)
    return positions, attributes


# --- one lidar tile's subtree ---------------------------------------------------------------------


def tile_cloud(cloud: PointCloud, out: Path, placement: Placement, spec: str, max_points: int,
               metadata: dict, threads: int = 2, keep: np.ndarray | None = None) -> Subtree:
    """Write the points ``keep`` of ``cloud`` (all by default) as one tileset in the folder ``out`` (created),
    in a local frame of its own.

    Returns the subtree as a root tileset references it. Writes into ``out`` only; the caller makes the
    folder appear whole.
    """
    from concurrent.futures import ThreadPoolExecutor

    x, y, z = (cloud.xyz[:, axis] if keep is None else cloud.xyz[keep, axis] for axis in range(3))
    bounds = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
    frame = placement.local_frame(bounds, height=float(np.median(z[:: max(1, len(z) // 1000)])))
    local = placement.to_local(frame, x, y, z, dtype=np.float32)  # 0.1 mm within 1 km of the frame's origin
    del x, y, z
    order, columns, root = build_octree(local, max_points)
    del local
    index = order if keep is None else keep[order]
    attributes = {name: getattr(cloud, name)[index] for name in ATTRIBUTES}
    rgb = cloud.rgb[index] if cloud.rgb is not None else None
    del index, order
    out.mkdir(parents=True)
    extension = ".glb" if spec == "1.1" else ".pnts"
    nodes = list(iter_nodes(root))

    def write(node: Node) -> int:
        index = node.points
        data = TileData(columns[:, index].T.astype(np.float64), {name: values[index] for name, values in attributes.items()},
                        None if rgb is None else rgb[index])
        return write_content(data, node.mins, node.maxs, out / f"{node.name}{extension}", spec)

    with ThreadPoolExecutor(threads) as pool:
        sizes = list(pool.map(write, nodes))
    tile = _tile(root, extension)
    tile.transform = frame.transform
    count = sum(len(node.points) for node in nodes)
    document = tileset_document(tile, max(root.geometric_error, 1.0) * 2, spec,
                                {**metadata, "points": count, "bytes_per_point": round(sum(sizes) / count, 2)})
    write_json(document, out / "tileset.json")
    return Subtree(uri=f"{out.name}/tileset.json", box=oriented_box(frame, root.mins, root.maxs).to_dict()["box"],
                   geometric_error=max(root.geometric_error, 1.0) * 2, points=count)


def _tile(node: Node, extension: str) -> Tile:
    tile = Tile(geometric_error=node.geometric_error, bounding_volume=box(node.mins, node.maxs),
                refine_mode="ADD", content_uri=f"{node.name}{extension}")
    tile.children = [_tile(child, extension) for child in node.children]
    return tile


def local_frame_of(subtree_document: dict) -> LocalFrame:
    """The local frame of a subtree tileset written by :func:`tile_cloud` (its root transform)."""
    matrix = np.array(subtree_document["root"]["transform"]).reshape(4, 4, order="F")
    return LocalFrame(origin=matrix[:3, 3], rotation=matrix[:3, :3].T)

