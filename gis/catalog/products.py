"""Products as pipelines leave them: what kind, which lineage.

A product is a GeoPackage (one layer of it), a Cloud-Optimised GeoTIFF, or a
3D Tiles folder (``tileset.json`` and its content), with an optional sidecar
``PRODUCT.lineage.json`` written by the pipeline runner. Checksums are in
:mod:`gis.checksums`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gis.errors import InputError

VECTOR_SUFFIXES = (".gpkg",)
RASTER_SUFFIXES = (".tif", ".tiff")


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
