"""The :class:`~gis.qgis.presentation.Presentation` of a layer's current version, for the backends to write.

Built before the switch's transaction (reading the version's data ranges for
the default style), once for every backend. Files layers (rasters, 3D Tiles)
get their ``current/`` link after the switch (:func:`link_current`).
"""

from __future__ import annotations

from pathlib import Path

from gis.backends.base import Backend
from gis.catalog.licences import LICENCES
from gis.catalog.products import FILE_KINDS
from gis.errors import InputError
from gis.qgis.links import stable_path, switch_link
from gis.qgis.presentation import Presentation, Style
from gis.qgis.styles import CROWN_COLUMNS, HEIGHT_COLUMNS, Summary, default_style, geometry_family
from gis.records import Layer, Version

STYLE_COLUMNS = HEIGHT_COLUMNS + CROWN_COLUMNS + ("elevation",)
# What the internal tables of either backend are called, hyphens read as underscores.
RESERVED_PREFIXES = ("gpkg_", "rtree_", "sqlite_", "lutece_", "layer_styles", "spatial_ref_sys", "ogr_",
                     "geometry_columns", "pg_")


def check_new_name(backend: Backend, layer_id: str) -> None:
    """Refuse a new layer id that would name, or read as, an internal table of the city GIS."""
    normalised = layer_id.replace("-", "_")
    reserved = next((prefix for prefix in RESERVED_PREFIXES if normalised.startswith(prefix)), None)
    if reserved is not None:
        raise InputError(f"layer id {layer_id!r} reads as an internal table of the city GIS ({reserved.rstrip('_')}"
                         f"...); choose another layer id")
    backend.check_name(layer_id)


def presentation(backend: Backend, layer: Layer, version: Version | None, style: Style | None = None,
                 frame=None) -> Presentation:
    """What QGIS shows of ``layer`` at ``version`` (None: withdrawn); ``style`` replaces the default one.

    ``frame``: the version's features when in memory (a publication), read
    for the default style instead of the stored table.
    """
    licence = LICENCES.get(layer.licence)
    if style is None and version is not None:
        style = backend.given_style(layer.id)  # a given style stays until another is given
    if style is None and version is not None:
        summary = frame_summary(frame) if frame is not None else _summary(backend, version)
        style = default_style(layer.id, layer.kind, layer.theme, summary, name_hint=version.storage.rsplit("/", 1)[-1])
    return Presentation(
        layer_id=layer.id, kind=layer.kind, title=layer.title, abstract=layer.description or "",
        keywords=tuple(layer.keywords) or tuple(word for word in (layer.theme,) if word),
        licence=layer.licence, licence_title=licence.title if licence else layer.licence,
        licence_uri=licence.uri if licence else None,
        attribution=f"{layer.producer or 'Ville, service SIG'} ({layer.licence})", access=layer.access,
        version=version.number if version else None, published=version.published if version else None,
        crs=version.crs if version else layer.crs, extent=version.extent if version else layer.extent, style=style)


def link_current(backend: Backend, view: Presentation, version: Version | None) -> Path | None:
    """Point a file layer's ``current/`` path at ``version``'s file (or remove it); the path, or None for a vector."""
    if view.kind == "vector":
        return None
    root = backend.files.root.parent
    if version is None:
        for candidate in (root / "current").glob(f"{view.layer_id}*"):
            if candidate.name.split(".", 1)[0] == view.layer_id:  # id, id.tif, id.city.json (ids have no dot)
                switch_link(candidate, None)
        return None
    target = backend.files_path(version)
    if view.kind not in FILE_KINDS:
        target = target.parent  # the 3D Tiles folder
    link = stable_path(root, view.layer_id, view.kind, target.name)
    switch_link(link, target, view.style if view.kind == "raster" else None)  # QGIS styles a raster beside it
    return link


def frame_summary(frame) -> Summary:
    """The style rule's view of a GeoDataFrame: its geometry family and the ranges of the style columns."""
    import numpy as np

    types = frame.geometry.geom_type.dropna().unique()
    ranges = {}
    for name in STYLE_COLUMNS:
        if name in frame.columns and frame[name].dtype.kind in "iuf":
            values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
            if np.isfinite(values).any():
                ranges[name] = (float(np.nanmin(values)), float(np.nanmax(values)))
    return Summary(geometry_family(types[0]) if len(types) else None, ranges)


def _summary(backend: Backend, version: Version) -> Summary:
    if version.kind == "vector":
        geometry_type, ranges = backend.vector_summary(version, STYLE_COLUMNS)
        return Summary(geometry_family(geometry_type), ranges)
    if version.kind == "raster":
        return Summary(None, _raster_range(backend.files_path(version)))
    return Summary()


def _raster_range(path: Path) -> dict[str, tuple[float, float]]:
    """Band 1's (min, max), from its smallest overview (a few thousand pixels of a COG)."""
    import numpy as np
    import rasterio

    with rasterio.open(path) as source:
        overviews = source.overviews(1)
        factor = overviews[-1] if overviews else 1
        data = source.read(1, masked=True, out_shape=(max(1, source.height // factor), max(1, source.width // factor)))
    values = np.ma.compressed(data)
    values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if values.size == 0:
        return {}
    return {"band1": (float(values.min()), float(values.max()))}
