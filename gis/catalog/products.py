"""Products as pipelines leave them: what kind, which lineage, which checksum.

A product is a GeoPackage (one layer of it), a Cloud-Optimised GeoTIFF, or a
3D Tiles folder (``tileset.json`` and its content), with an optional sidecar
``PRODUCT.lineage.json`` written by the pipeline runner.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gis.errors import InputError

VECTOR_SUFFIXES = (".gpkg",)
RASTER_SUFFIXES = (".tif", ".tiff")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Product:
    """A product to publish: its path, kind, source layer (vector) and lineage."""

    path: Path
    kind: str
    source_layer: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)


def detect_kind(path: Path, kind: str | None = None) -> str:
    """The layer kind of a product path, or ``kind`` when given and consistent.

    3D Tiles folders are ``pointcloud-3dtiles`` when their content is ``.pnts``
    and ``mesh-3dtiles`` otherwise, unless ``kind`` says which.

    Raises
    ------
    InputError
        When the path does not exist or is not a product Lutèce publishes.
    """
    if not path.exists():
        raise InputError(f"{path}: no such product; give a GeoPackage, a COG or a 3D Tiles folder")
    if path.is_dir():
        if not (path / "tileset.json").is_file():
            raise InputError(f"{path}: a folder product must be 3D Tiles with a tileset.json")
        if kind in ("pointcloud-3dtiles", "mesh-3dtiles"):
            return kind
        return "pointcloud-3dtiles" if any(path.rglob("*.pnts")) else "mesh-3dtiles"
    suffix = path.suffix.lower()
    if suffix in VECTOR_SUFFIXES:
        return "vector"
    if suffix in RASTER_SUFFIXES:
        return "raster"
    raise InputError(f"{path}: unknown product type {suffix!r}; give a .gpkg, a .tif (COG) or a 3D Tiles folder")


def read_lineage(path: Path, source_layer: str | None = None) -> dict[str, Any]:
    """The lineage in the pipeline's sidecar ``PRODUCT.lineage.json``, or ``{}`` when there is none.

    The runner's sidecar holds ``{"layers": {name: lineage}}``; the entry of
    ``source_layer`` is taken (or the only one). A sidecar that is a plain
    lineage mapping is returned as is.
    """
    sidecar = path.with_name(path.name + ".lineage.json")
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{sidecar}: unreadable lineage ({exc}); fix or remove the sidecar") from None
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, dict):
        return data if isinstance(data, dict) else {}
    if source_layer in layers:
        return layers[source_layer]
    if len(layers) == 1:
        return next(iter(layers.values()))
    return {}


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(folder: Path) -> str:
    """The sha256 of a folder: of its files' relative paths and contents, in sorted order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(file.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        digest.update(sha256_file(file).encode("ascii") + b"\n")
    return digest.hexdigest()


def sha256_frame(frame) -> str:
    """The sha256 of a GeoDataFrame's data: column names, geometries as WKB, attribute values.

    Independent of the file it came from, so that the same features give the
    same checksum whatever GeoPackage held them.
    """
    import shapely

    digest = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        digest.update(f"{name}\0{column.dtype}\0".encode("utf-8"))
        if name == frame.geometry.name:
            # Lengths then bytes, each in one call: a null geometry has length 0 and no bytes.
            wkbs = [b"" if wkb is None else wkb for wkb in shapely.to_wkb(np.asarray(column.values), byte_order=1)]
            digest.update(np.fromiter(map(len, wkbs), dtype="<u4", count=len(wkbs)).tobytes())
            digest.update(b"".join(wkbs))
        elif column.dtype.kind in "biufcmM":
            digest.update(np.ascontiguousarray(column.to_numpy()).tobytes())
        else:
            values = column.to_numpy(dtype=object)
            digest.update("\x1f".join(["\x00" if value is None else str(value) for value in values]).encode("utf-8"))
    return digest.hexdigest()


def fsync_tree(folder: Path) -> None:
    """Flush a folder's files and the folder itself to disk (before it is renamed into place)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as stream:
                os.fsync(stream.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
