"""Mapbox Vector Tiles of a vector layer's version, in the WebMercatorQuad tile matrix set.

On PostGIS the database builds the tile (``ST_TileEnvelope``, ``ST_AsMVTGeom``,
``ST_AsMVT``) through the version table's GIST index, on a connection of the
worker's pool (the features provider's). On GeoPackage the
features meeting the tile are read through the version table's R-tree with
Python's SQLite (under the backend's per-file lock: GDAL and Python's SQLite
never hold the catalog in one process at once), their GeoPackage geometry
blobs decoded, projected to Web Mercator, clipped and quantised with numpy
and shapely, and encoded by the ``mapbox-vector-tile`` package.

Tiles are cached per version (its number and sha256 are in the key), in each
worker's memory and in a folder all workers share: a new version is a new
key, so nothing stale can be served. Feature ids are the
features' numbers in the version (1..N on both backends), as in the features API.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gis.records import Version
from server.routes.http import LRU, BadRequest

EXTENT = 4096  # MVT pixels per tile side
BUFFER = 64  # pixels of geometry kept around a tile, so that strokes do not stop at its edge
MAX_ZOOM = 24
WEB_MERCATOR_HALF = 20037508.342789244
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileId:
    """One tile of WebMercatorQuad: ``z`` the tile matrix, ``y`` its row, ``x`` its column."""

    z: int
    y: int
    x: int

    @classmethod
    def parse(cls, z: str, y: str, x: str) -> "TileId":
        """The tile of a URL's three indices.

        Raises
        ------
        BadRequest
            An index that is not a whole number, a zoom past ``MAX_ZOOM``, or a row or column outside the matrix.
        """
        try:
            tile = cls(int(z), int(y), int(x))
        except ValueError:
            raise BadRequest("tileMatrix, tileRow and tileCol must be whole numbers") from None
        if not 0 <= tile.z <= MAX_ZOOM:
            raise BadRequest(f"tileMatrix must be between 0 and {MAX_ZOOM} in WebMercatorQuad")
        if not (0 <= tile.x < 2 ** tile.z and 0 <= tile.y < 2 ** tile.z):
            raise BadRequest("tileRow or tileCol is outside the tile matrix")
        return tile

    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in EPSG:3857."""
        size = 2 * WEB_MERCATOR_HALF / 2 ** self.z
        minx = -WEB_MERCATOR_HALF + self.x * size
        maxy = WEB_MERCATOR_HALF - self.y * size
        return minx, maxy - size, minx + size, maxy


class TileCache:
    """Encoded tiles by (layer, version number, sha256, tile): immutable, so never stale.

    Kept in this worker's memory (``size`` tiles) and, when ``folder`` is
    given, on disk, shared by every worker and kept across restarts
    (``FOLDER/LAYER/NUMBER-SHA256/Z/ROW/COL.mvt``, written whole then renamed
    into place). A folder that cannot be written leaves the memory cache alone.
    """

    def __init__(self, size: int = 2048, folder: Path | None = None) -> None:
        self._tiles = LRU(size)
        self.folder = Path(folder) if folder is not None else None

    def get_or_build(self, version: Version, tile: TileId, build) -> bytes:
        key = (version.layer_id, version.number, version.checksum, tile)
        data = self._tiles.get(key)
        if data is not None:
            return data
        path = self._path(version, tile)
        data = _read(path) if path is not None else None
        if data is None:
            data = build(version, tile)
            if path is not None:
                _write(path, data)
        self._tiles.put(key, data)
        return data

    def _path(self, version: Version, tile: TileId) -> Path | None:
        if self.folder is None:
            return None
        return (self.folder / version.layer_id / f"{version.number}-{version.checksum}" / str(tile.z) / str(tile.y)
                / f"{tile.x}.mvt")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _write(path: Path, data: bytes) -> None:
    """Write a tile whole, then rename it into place (a reader never sees half a tile)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as error:  # a read-only or full disk: serve from memory only
        log.warning("tile cache %s not written (%s)", path, error)
        partial.unlink(missing_ok=True)


# -- GeoPackage -------------------------------------------------------------------------------------


def gpkg_tile(gpkg_path, version: Version, tile: TileId) -> bytes:
    """The MVT of ``tile`` for a vector version stored in the catalog GeoPackage."""
    import mapbox_vector_tile
    import shapely
    from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid

    bounds = tile.bounds()
    margin = (bounds[2] - bounds[0]) * BUFFER / EXTENT
    query_box = _to_layer_crs((bounds[0] - margin, bounds[1] - margin, bounds[2] + margin, bounds[3] + margin),
                              version.crs)
    names, fids, rows, blobs = _gpkg_features(gpkg_path, version.storage.removeprefix("table:"), query_box)
    if not fids:
        return b""
    geometries = _project(shapely.from_wkb(_gpkg_wkb(blobs)), version.crs)
    pixels = _to_pixels(geometries, bounds)
    pixels = shapely.clip_by_rect(pixels, -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    invalid = ~shapely.is_valid(pixels) & ~shapely.is_missing(pixels)
    pixels[invalid] = _one_kind(shapely.make_valid(pixels[invalid]))  # rounding to whole pixels may fold a ring
    # MVT's exterior rings have a positive area in tile coordinates (y down): orient them all at once,
    # instead of the encoder's per-feature check (half of its time)
    pixels = shapely.orient_polygons(pixels, exterior_cw=False)
    features = []
    for fid, row, geometry in zip(fids, rows, pixels):
        if geometry is None or geometry.is_empty:
            continue
        properties = {name: _mvt_value(value) for name, value in zip(names, row)}
        properties = {name: value for name, value in properties.items() if value is not None}
        features.append({"geometry": geometry, "properties": properties, "id": int(fid)})
    if not features:
        return b""
    return mapbox_vector_tile.encode(
        [{"name": version.layer_id, "features": features}],
        default_options={"extents": EXTENT, "y_coord_down": True, "check_winding_order": False,
                         "on_invalid_geometry": on_invalid_geometry_make_valid})


def _gpkg_features(gpkg_path, table: str, box: tuple[float, float, float, float]):
    """Attribute names, fids, attribute rows and geometry blobs of the features whose R-tree box meets ``box``."""
    from gis.backends.geopackage import _exclusive

    with _exclusive(gpkg_path):
        con = sqlite3.connect(f"file:{gpkg_path}?mode=ro", uri=True, timeout=30, check_same_thread=False)
        try:
            geometry, = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name=?",
                                    (table,)).fetchone()
            columns = [row[1] for row in con.execute(f"PRAGMA table_info({_quote(table)})")]
            fid = next(row[1] for row in con.execute(f"PRAGMA table_info({_quote(table)})") if row[5] == 1)
            names = [c for c in columns if c not in (fid, geometry)]
            selected = ", ".join(_quote(c) for c in [fid, geometry, *names])
            rtree = _quote(f"rtree_{table}_{geometry}")
            rows = con.execute(
                f"SELECT {selected} FROM {_quote(table)} WHERE {_quote(fid)} IN "
                f"(SELECT id FROM {rtree} WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?) "
                f"ORDER BY {_quote(fid)}", (box[0], box[2], box[1], box[3])).fetchall()
        finally:
            con.close()
    return names, [r[0] for r in rows], [r[2:] for r in rows], [r[1] for r in rows]


def _gpkg_wkb(blobs: list[bytes | None]) -> np.ndarray:
    """The WKB inside GeoPackage geometry blobs (header: magic, version, flags, srs id, envelope)."""
    envelope_bytes = (0, 32, 48, 48, 64)
    out = np.empty(len(blobs), dtype=object)
    for index, blob in enumerate(blobs):
        if blob is None or len(blob) < 8 or blob[:2] != b"GP":
            out[index] = None
            continue
        flags = blob[3]
        envelope = (flags >> 1) & 0x07
        out[index] = None if flags & 0x10 or envelope > 4 else bytes(blob[8 + envelope_bytes[envelope]:])
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- PostGIS ----------------------------------------------------------------------------------------

def postgis_tile(dsn: str, version: Version, tile: TileId) -> bytes:
    """The MVT of ``tile`` built by PostGIS (``ST_AsMVT``) from a version table of ``lutece_data``."""
    from psycopg import sql

    from gis.backends.postgis import DATA_SCHEMA, FID
    from server.providers.features import pool

    table = version.storage.removeprefix("table:")
    with pool(dsn).connection() as con, con.cursor() as cur:
        columns = _pg_columns(cur, table)
        geometry = next(name for name, kind in columns if kind == "geometry")
        attributes = [sql.Identifier(name) for name, kind in columns if kind != "geometry" and name != FID]
        selected = sql.SQL(", ").join([sql.SQL("t.{} AS {}").format(sql.Identifier(FID), sql.Identifier("mvt_id")),
                                       *[sql.SQL("t.{}").format(a) for a in attributes]])
        query = sql.SQL(
            "WITH bounds AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env, "
            "ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s) AS wide), "
            "features AS (SELECT ST_AsMVTGeom(ST_Transform(t.{geom}, 3857), bounds.env, %(extent)s, %(buffer)s, true) "
            "AS mvt_geom, {selected} FROM {table} t, bounds "
            "WHERE t.{geom} && ST_Transform(bounds.wide, %(srid)s::integer)) "
            "SELECT ST_AsMVT(features.*, %(name)s, %(extent)s, 'mvt_geom', 'mvt_id') FROM features "
            "WHERE mvt_geom IS NOT NULL").format(
                geom=sql.Identifier(geometry), selected=selected, table=sql.Identifier(DATA_SCHEMA, table))
        cur.execute(query, {"z": tile.z, "x": tile.x, "y": tile.y, "margin": BUFFER / EXTENT, "extent": EXTENT,
                            "buffer": BUFFER, "name": version.layer_id, "srid": _pg_srid(cur, table, geometry)})
        data = cur.fetchone()[0]
    return bytes(data) if data else b""


_COLUMNS = LRU(256)


def _pg_columns(cur, table: str) -> list[tuple[str, str]]:
    """The columns of a version table (immutable, so cached)."""
    from gis.backends.postgis import DATA_SCHEMA

    columns = _COLUMNS.get(table)
    if columns is None:
        cur.execute("SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = %s::regclass "
                    "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (f'{DATA_SCHEMA}."{table}"',))
        columns = cur.fetchall()
        _COLUMNS.put(table, columns)
    return columns


def _pg_srid(cur, table: str, geometry: str) -> int:
    """The SRID of a version table's geometry column: a constant, so that the GIST index serves the box."""
    from gis.backends.postgis import DATA_SCHEMA

    key = ("srid", table)
    srid = _COLUMNS.get(key)
    if srid is None:
        cur.execute("SELECT Find_SRID(%s, %s, %s)", (DATA_SCHEMA, table, geometry))
        srid = int(cur.fetchone()[0])
        _COLUMNS.put(key, srid)
    return srid


# -- geometry helpers -------------------------------------------------------------------------------

_TRANSFORMERS = LRU(16)


def _transformer(source: str | None, target: str):
    key = (source, target)
    transformer = _TRANSFORMERS.get(key)
    if transformer is None:
        from pyproj import Transformer

        transformer = Transformer.from_crs(source or "EPSG:2154", target, always_xy=True)
        _TRANSFORMERS.put(key, transformer)
    return transformer


def _to_layer_crs(bounds: tuple[float, float, float, float], crs: str | None) -> tuple[float, float, float, float]:
    """A Web Mercator box as the box that covers it in the layer's CRS (edges densified)."""
    return tuple(_transformer("EPSG:3857", crs or "EPSG:2154").transform_bounds(*bounds, densify_pts=21))


def _project(geometries: np.ndarray, crs: str | None) -> np.ndarray:
    import shapely

    transformer = _transformer(crs, "EPSG:3857")

    def move(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometries, move)


def _one_kind(geometries: np.ndarray) -> np.ndarray:
    """Each geometry as parts of one dimension, as MVT holds them: a ring folded by the rounding (a wall thinner
    than a pixel) comes out of ``make_valid`` as a collection of polygons and lines; its polygons are kept."""
    import shapely

    for index in np.flatnonzero(shapely.get_type_id(geometries) == 7):  # GeometryCollection
        parts = shapely.get_parts(geometries[index])
        dimensions = shapely.get_dimensions(parts)
        kept = parts[dimensions == dimensions.max()] if len(parts) else parts
        geometries[index] = shapely.union_all(kept) if len(kept) else None
    return geometries


def _to_pixels(geometries: np.ndarray, bounds: tuple[float, float, float, float]) -> np.ndarray:
    """Web Mercator geometries as tile pixels (y down), rounded to whole pixels as MVT stores them."""
    import shapely

    minx, miny, maxx, maxy = bounds
    scale = EXTENT / (maxx - minx)

    def pixels(coords: np.ndarray) -> np.ndarray:
        return np.round(np.column_stack([(coords[:, 0] - minx) * scale, (maxy - coords[:, 1]) * scale]))

    return shapely.transform(geometries, pixels)


def _mvt_value(value: Any) -> Any:
    """A property value as MVT stores it (bool, int, float or text)."""
    if isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and math.isnan(value):
            return None
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
