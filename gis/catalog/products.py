"""Products as pipelines leave them: what kind, which lineage.

A product is a GeoPackage (one layer of it), a Cloud-Optimised GeoTIFF, a
CityJSON 2.0 file, or a 3D Tiles folder (``tileset.json`` and its content), with an optional sidecar
``PRODUCT.lineage.json`` written by the pipeline runner. Checksums are in
:mod:`gis.checksums`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gis.catalog import cityjson
from gis.errors import InputError

VECTOR_SUFFIXES = (".gpkg",)
RASTER_SUFFIXES = (".tif", ".tiff")
#: Kinds stored as one file (the others: a table, or a 3D Tiles folder).
FILE_KINDS = ("raster", cityjson.KIND)


@dataclass(frozen=True)
class Product:
    """A product to publish: its path (``None`` for a GeoDataFrame), kind, source layer (vector) and lineage."""

    path: Path | None
    kind: str
    source_layer: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)


def detect_kind(path: Path, kind: str | None = None) -> str:
    """The layer kind of a product path, or ``kind`` when given and consistent.

    3D Tiles folders are ``pointcloud-3dtiles`` when their content is ``.pnts``
    and ``mesh-3dtiles`` otherwise, unless ``kind`` says which. A
    ``*.city.json`` file, or a ``.json`` file whose top-level ``"type"`` is
    ``"CityJSON"``, is ``cityjson`` (its gate checks the rest).

    Raises
    ------
    InputError
        When the path does not exist or is not a product Lutèce publishes.
    """
    if not path.exists():
        raise InputError(f"{path}: no such product; give a GeoPackage, a COG, a CityJSON file or a 3D Tiles folder")
    if path.is_dir():
        if not (path / "tileset.json").is_file():
            raise InputError(f"{path}: a folder product must be 3D Tiles with a tileset.json")
        if kind in ("pointcloud-3dtiles", "mesh-3dtiles"):
            return kind
        return "pointcloud-3dtiles" if any(path.rglob("*.pnts")) else "mesh-3dtiles"
    suffix = path.suffix.lower()
    if kind == cityjson.KIND:  # whatever its name: the gate reads it
        return kind
    if suffix in VECTOR_SUFFIXES:
        return "vector"
    if suffix in RASTER_SUFFIXES:
        return "raster"
    if suffix == ".json":
        if cityjson.named_cityjson(path) or cityjson.is_cityjson(path):
            return cityjson.KIND
        raise cityjson.unknown_json(path)
    raise InputError(f"{path}: unknown product type {suffix!r}; give a .gpkg, a .tif (COG), a .city.json "
                     f"(CityJSON 2.0) or a 3D Tiles folder")


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
