"""The gates a product passes before a version is accepted.

Each gate raises one :class:`~gis.errors.ProductError` saying what is wrong,
where, and what to do; nothing is written before every gate has passed.

- CRS present and equal to the declared one (vector and raster);
- vector (a GeoPackage layer or a GeoDataFrame, through the same
  :func:`check_frame`): one geometry column, attributes are UTF-8,
  geometries valid (``on_invalid``), not empty unless ``allow_empty``;
- raster: a Cloud-Optimised GeoTIFF;
- 3D Tiles: a readable ``tileset.json`` whose content files exist inside the folder
  (which holds only regular files, see :func:`gis.checksums.tree_files`).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from gis.errors import InputError, ProductError

log = logging.getLogger(__name__)

ON_INVALID = ("raise", "fix", "skip")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # a URI with a scheme (http:, file:, data:): not a relative path


@dataclass
class GateReport:
    """What the gates found and did, kept in the version's lineage."""

    features: int | None = None
    fixed: int = 0
    dropped: int = 0
    extent: tuple[float, float, float, float] | None = None
    crs: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_lineage(self) -> dict[str, Any]:
        return {"features": self.features, "fixed": self.fixed, "dropped": self.dropped, **self.extra}


def check_crs(where: str, found, declared: str | None) -> str:
    """Return the product's CRS as an authority string after checking it equals ``declared``.

    Raises
    ------
    ProductError
        When the product has no CRS or another one.
    """
    from pyproj import CRS

    if found is None or str(found).strip() == "":
        raise ProductError(f"{where}: the product has no CRS; write it in {declared or 'the working CRS'} "
                           f"and publish again")
    crs = CRS.from_user_input(found)
    name = crs.to_string()
    if declared is not None and not crs.equals(CRS.from_user_input(declared), ignore_axis_order=True):
        raise ProductError(f"{where}: the product's CRS is {name}, not the declared {declared}; "
                           f"reproject it or declare its CRS")
    return name


def source_layer_of(path: Path, source_layer: str | None) -> str:
    """The GeoPackage layer to publish: ``source_layer`` or the only one."""
    import pyogrio

    try:
        names = [str(name) for name, _type in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises its own DataSourceError family
        raise ProductError(f"{path}: not a readable GeoPackage ({exc})") from None
    if source_layer is None:
        if len(names) != 1:
            raise InputError(f"{path}: holds {len(names)} layers ({', '.join(names)}); choose one with --source-layer")
        return names[0]
    if source_layer not in names:
        raise InputError(f"{path}: no layer {source_layer!r}; it holds {', '.join(names) or 'none'}")
    return source_layer


def read_features(path: Path, layer: str):
    """Read one layer of a GeoPackage product through GDAL, features labelled by their fid.

    Raises
    ------
    ProductError
        Unreadable, or text that is not UTF-8 (naming the feature and column).
    """
    import pyogrio
    from pyarrow import ArrowInvalid

    where = f"{path} layer {layer}"
    try:
        frame = pyogrio.read_dataframe(path, layer=layer, fid_as_index=True, use_arrow=True)
        _validate_arrow_text(frame)
        return frame
    except (UnicodeDecodeError, ArrowInvalid):
        fid, column = _first_non_utf8(path, layer)
        raise ProductError(f"{where}: attribute {column!r} of feature {fid} is not UTF-8; "
                           f"re-encode the attributes in UTF-8") from None
    except Exception as exc:
        raise ProductError(f"{where}: cannot be read ({exc})") from None


def _validate_arrow_text(frame) -> None:
    """Raise ``ArrowInvalid`` on text that is not UTF-8: Arrow reads take GDAL's bytes unchecked."""
    import pyarrow as pa

    for name in frame.columns:
        if _arrow_text(frame[name].dtype):
            pa.array(frame[name].array).validate(full=True)


def _arrow_text(dtype) -> bool:
    """Whether a column is pandas text held by Arrow."""
    import pandas as pd

    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def check_on_invalid(on_invalid: str) -> None:
    """Refuse an unknown ``on_invalid`` mode."""
    if on_invalid not in ON_INVALID:
        raise InputError(f"on_invalid={on_invalid!r}; use one of {', '.join(ON_INVALID)}")


def check_frame(frame, where: str, declared_crs: str | None, on_invalid: str = "raise", allow_empty: bool = False):
    """Pass a GeoDataFrame through the vector gates, whether read from a GeoPackage or given as is.

    Parameters
    ----------
    frame
        The features; errors name a feature by its index label (a
        GeoPackage's fid).
    where
        What the features are, to start error messages (e.g. the product's
        path and layer).
    declared_crs
        The CRS the features must have (e.g. ``"EPSG:2154"``).
    on_invalid
        ``"raise"`` (default): refuse invalid, null or empty geometries;
        ``"fix"``: repair invalid ones with ``shapely.make_valid`` and drop the
        null or empty ones; ``"skip"``: drop every bad one.
    allow_empty
        Accept a layer without features.

    Returns
    -------
    tuple
        The canonical GeoDataFrame (:func:`canonical_frame`) and a :class:`GateReport`.

    Raises
    ------
    ProductError
        No (or more than one) geometry column, no or another CRS, text that
        is not UTF-8, bad geometries under ``"raise"``, no features.
    """
    check_on_invalid(on_invalid)
    report = _check_attributes(frame, where, declared_crs)
    frame = _geometry_gate(frame, where, on_invalid, report)
    return _counted(frame, where, report, allow_empty), report


def check_all_but_geometries(frame, where: str, declared_crs: str | None, allow_empty: bool = False):
    """:func:`check_frame` in ``"raise"`` mode without its geometry gate, which :func:`check_geometries` runs.

    Both together refuse exactly what :func:`check_frame` refuses; apart, the
    geometries can be checked while other work goes on.

    Returns
    -------
    tuple
        The canonical GeoDataFrame and a :class:`GateReport`.
    """
    report = _check_attributes(frame, where, declared_crs)
    return _counted(frame, where, report, allow_empty), report


def check_geometries(frame, where: str) -> None:
    """The geometry gate in ``"raise"`` mode, on the frame as given (errors name its index labels)."""
    _geometry_gate(frame, where, "raise", GateReport())


def _check_attributes(frame, where: str, declared_crs: str | None) -> GateReport:
    _check_geometry_column(frame, where)
    report = GateReport(crs=check_crs(where, frame.crs, declared_crs))
    _utf8_gate(frame, where)
    return report


def _counted(frame, where: str, report: GateReport, allow_empty: bool):
    """The canonical frame, once the emptiness gate passed and the report counted the features and extent."""
    if len(frame) == 0 and not allow_empty:
        raise ProductError(f"{where}: no features; publish with --allow-empty if an empty layer is intended")
    report.features = len(frame)
    if len(frame):
        report.extent = tuple(float(v) for v in frame.total_bounds)
    return canonical_frame(frame, where)


def canonical_frame(frame, where: str):
    """The features as the catalog stores and checksums them.

    Attributes in their order, then the geometry named ``geometry``, index
    0..n-1: the form GDAL reads a GeoPackage in, so a GeoDataFrame and the
    GeoPackage holding it are stored as the same table.
    """
    geometry = frame.geometry.name
    attributes = [name for name in frame.columns if name != geometry]
    if geometry != "geometry" and "geometry" in attributes:
        raise ProductError(f"{where}: an attribute is named 'geometry' while the geometry column is "
                           f"{geometry!r}; rename the attribute")
    frame = frame[[*attributes, geometry]].reset_index(drop=True)
    return frame if geometry == "geometry" else frame.rename_geometry("geometry")


def _check_geometry_column(frame, where: str) -> None:
    """Refuse what is not a GeoDataFrame with exactly one geometry column."""
    from geopandas import GeoDataFrame

    try:
        geometry = frame.geometry.name if isinstance(frame, GeoDataFrame) else None
    except AttributeError:  # a GeoDataFrame without an active geometry column
        geometry = None
    if geometry is None:
        raise ProductError(f"{where}: has no geometry column; publish a spatial layer")
    others = [str(name) for name in frame.columns if name != geometry and frame[name].dtype == "geometry"]
    if others:
        raise ProductError(f"{where}: has more geometry columns than {geometry!r} ({', '.join(others)}); "
                           f"publish one geometry column per layer")


def _utf8_gate(frame, where: str) -> None:
    """Refuse text that cannot be written as UTF-8 (a lone surrogate from a bad decoding, say)."""
    geometry = frame.geometry.name
    for name in frame.columns:
        if not _encodes(str(name)):
            raise ProductError(f"{where}: the column name {name!r} is not UTF-8; rename the column")
        if name == geometry or frame[name].dtype.kind in "biufcmM" or _arrow_text(frame[name].dtype):
            continue  # (Arrow holds valid UTF-8 only: it refuses a lone surrogate, read_features validates)
        values = frame[name].to_numpy(dtype=object, na_value="")
        try:
            text = "".join(values)  # one check for the whole column, the culprit only on failure
        except TypeError:  # not only strings: their text is written
            text = "".join(map(str, values))
        if not _encodes(text):
            label = next(label for label, value in zip(frame.index, values) if not _encodes(str(value)))
            raise ProductError(f"{where}: attribute {name!r} of feature {label} is not UTF-8; "
                               f"re-encode the attributes in UTF-8")


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _geometry_gate(frame, where: str, on_invalid: str, report: GateReport):
    import shapely

    geometries = np.asarray(frame.geometry.values)
    missing = shapely.is_missing(geometries) | shapely.is_empty(geometries)
    invalid = ~missing & ~shapely.is_valid(geometries)
    bad = missing | invalid
    if not bad.any():
        return frame
    if on_invalid == "raise":
        first = frame.index[np.flatnonzero(bad)[0]]
        reason = shapely.is_valid_reason(geometries[bad][0]) if invalid[bad][0] else "null or empty geometry"
        raise ProductError(f"{where}: {int(bad.sum())} invalid or empty geometries, the first in feature {first} "
                           f"({reason}); fix them or publish with --on-invalid fix")
    keep = ~bad
    if on_invalid == "fix" and invalid.any():
        fixed = shapely.make_valid(geometries[invalid], method="structure", keep_collapsed=False)
        geometries = geometries.copy()
        geometries[invalid] = fixed
        repaired = invalid.copy()
        repaired[invalid] = ~shapely.is_empty(fixed)
        keep = keep | repaired
        report.fixed = int(repaired.sum())
        from geopandas import GeoSeries

        frame = frame.copy()
        frame[frame.geometry.name] = GeoSeries(geometries, index=frame.index, crs=frame.crs)
    report.dropped = int((~keep).sum())
    log.warning("%s: %d geometries fixed, %d dropped", where, report.fixed, report.dropped)
    return frame[keep]


def _first_non_utf8(path: Path, layer: str) -> tuple[Any, str]:
    """Locate the first text attribute that is not UTF-8 (plain SQLite read of the GeoPackage's table)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.text_factory = bytes
    found: list[tuple[int, str]] = []
    try:
        quoted = '"' + layer.replace('"', '""') + '"'
        columns = [row[1].decode("utf-8", "replace") for row in con.execute(f"PRAGMA table_info({quoted})")]
        for column in columns:
            name = '"' + column.replace('"', '""') + '"'
            query = f"SELECT rowid, {name} FROM {quoted} WHERE typeof({name}) = 'text' ORDER BY rowid"
            for rowid, value in con.execute(query):
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    found.append((rowid, column))
                    break
    finally:
        con.close()
    return min(found) if found else ("?", "?")


def check_raster(path: Path, declared_crs: str | None) -> GateReport:
    """Check that a raster product is a readable COG in the declared CRS.

    Raises
    ------
    ProductError
        Unreadable, no or another CRS, or not a Cloud-Optimised GeoTIFF.
    """
    import rasterio

    try:
        with rasterio.open(path) as src:
            crs = src.crs.to_wkt() if src.crs else None
            layout = src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")
            bounds = tuple(float(v) for v in src.bounds)
            extra = {"width": src.width, "height": src.height, "count": src.count, "dtype": src.dtypes[0],
                     "resolution": [float(r) for r in src.res]}
    except rasterio.errors.RasterioIOError as exc:
        raise ProductError(f"{path}: not a readable raster ({exc})") from None
    report = GateReport(crs=check_crs(str(path), crs, declared_crs), extent=bounds, extra=extra)
    if layout != "COG":
        raise ProductError(f"{path}: not a Cloud-Optimised GeoTIFF; convert it with "
                           f"'rio cogeo create' or 'gdal_translate -of COG'")
    return report


def check_3dtiles(folder: Path) -> GateReport:
    """Check that a 3D Tiles folder has a readable tileset.json whose content files all exist inside it.

    External tilesets (content ending in ``.json``) are followed. A content
    URI that resolves outside the folder (``../``, an absolute path, a URL,
    a symbolic link to a file outside) is refused as such, not as missing.

    Raises
    ------
    ProductError
        Unreadable tileset, missing root or asset, a content file outside
        the folder or missing.
    """
    root = folder.resolve()
    seen: set[Path] = set()
    pending = [root / "tileset.json"]
    contents = 0
    while pending:
        tileset_path = pending.pop()
        if tileset_path in seen:
            continue
        seen.add(tileset_path)
        try:
            tileset = json.loads(tileset_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProductError(f"{tileset_path}: not a readable tileset.json ({exc})") from None
        if not isinstance(tileset, dict) or "asset" not in tileset or "root" not in tileset:
            raise ProductError(f"{tileset_path}: a tileset needs 'asset' and 'root'")
        for uri in _content_uris(tileset["root"]):
            target = (tileset_path.parent / uri.split("?")[0]).resolve()
            if _URL.match(uri) or root not in target.parents:
                raise ProductError(f"{tileset_path}: content {uri} lies outside the product {folder}; "
                                   f"a published 3D Tiles folder holds all of its content: write the tiles "
                                   f"inside it and refer to them by relative paths")
            if not target.is_file():
                raise ProductError(f"{tileset_path}: content {uri} does not exist in {folder}; "
                                   f"write the missing tiles and publish again")
            if target.suffix == ".json":
                pending.append(target)
            else:
                contents += 1
    return GateReport(extra={"tilesets": len(seen), "tiles": contents})


def _content_uris(tile: dict[str, Any]) -> Iterator[str]:
    stack = [tile]
    while stack:
        node = stack.pop()
        items = list(node.get("contents", []))
        if "content" in node:
            items.append(node["content"])
        for content in items:
            uri = content.get("uri") or content.get("url")
            if uri:
                yield uri
        stack.extend(node.get("children", []))
