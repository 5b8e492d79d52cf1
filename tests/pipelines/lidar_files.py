"""Small LAS/LAZ files for the pipeline tests: quadrants of the sample district, broken files."""

from __future__ import annotations

import struct
from pathlib import Path

import laspy
import numpy as np
import pyproj

# Byte offsets in the LAS public header block (LAS 1.2-1.4 specification, table 3/4).
LEGACY_POINT_COUNT_OFFSET = 107
X_SCALE_OFFSET = 131


def write_las(path: Path, xyz: np.ndarray, classification: np.ndarray | None = None, crs: str | None = "EPSG:2154",
              point_format: int = 6) -> Path:
    header = laspy.LasHeader(point_format=point_format, version="1.4" if point_format >= 6 else "1.2")
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.floor(xyz.min(axis=0)) if len(xyz) else np.zeros(3)
    if crs is not None:
        header.add_crs(pyproj.CRS(crs))
    data = laspy.LasData(header)
    data.x, data.y, data.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if classification is not None:
        data.classification = classification
    data.write(path)
    return path


def split_into_quadrants(source: Path, folder: Path) -> list[Path]:
    """Cut a LAZ file into 4 LAZ tiles at its centre, as a survey delivers tiles."""
    data = laspy.read(source)
    x, y = np.asarray(data.x), np.asarray(data.y)
    cx = (np.floor(x.min()) + np.ceil(x.max())) / 2
    cy = (np.floor(y.min()) + np.ceil(y.max())) / 2
    paths = []
    for name, mask in {"sw": (x < cx) & (y < cy), "se": (x >= cx) & (y < cy),
                       "nw": (x < cx) & (y >= cy), "ne": (x >= cx) & (y >= cy)}.items():
        tile = laspy.LasData(data.header)
        tile.points = data.points[mask].copy()
        path = folder / f"tile_{name}.laz"
        tile.write(path)
        paths.append(path)
    return paths


def patch_header(path: Path, offset: int, fmt: str, value) -> Path:
    with path.open("r+b") as stream:
        stream.seek(offset)
        stream.write(struct.pack(fmt, value))
    return path


def write_copc(points: laspy.ScaleAwarePointRecord, header: laspy.LasHeader, path: Path) -> Path:
    """The points as a COPC file (written by copc-lib): a tenth of them in the octree's root node, the others
    in the eight nodes of depth 1, by octant, as a COPC writer spreads them."""
    import copclib as copc

    config = copc.CopcConfigWriter(header.point_format.id, copc.Vector3(*header.scales),
                                   copc.Vector3(*header.offsets), header.parse_crs().to_wkt())
    writer = copc.FileWriter(str(path), config)
    xyz = np.column_stack([points.x, points.y, points.z])
    low, high = xyz.min(axis=0), xyz.max(axis=0)
    writer.copc_config.las_header.min, writer.copc_config.las_header.max = copc.Vector3(*low), copc.Vector3(*high)
    centre, info = (low + high) / 2, writer.copc_config.copc_info
    info.center_x, info.center_y, info.center_z = centre
    info.halfsize = float((high - low).max() / 2 + 1)  # the octree's cube holds every point
    info.spacing = info.halfsize / 64
    in_root = np.random.default_rng(0).random(len(xyz)) < 0.1
    octant = (xyz >= centre).astype(int) @ [1, 2, 4]
    nodes = {copc.VoxelKey(0, 0, 0, 0): in_root}
    for index in range(8):
        nodes[copc.VoxelKey(1, index & 1, (index >> 1) & 1, index >> 2)] = ~in_root & (octant == index)
    for key, members in nodes.items():
        if members.any():
            raw = np.frombuffer(points.array[members].tobytes(), dtype=np.int8)
            writer.AddNode(key, copc.VectorChar(raw))
    writer.Close()
    return path
