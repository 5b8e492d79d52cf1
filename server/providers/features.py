"""OGC API Features for the city GIS's vector layers: a pygeoapi provider reading the version's table itself.

:class:`LuteceFeatures` is a :class:`pygeoapi.provider.base.BaseProvider`
bound to ONE version of a layer (the resource configuration names its
table), so a request that started before a publication reads the old
version whole and the next one the new version. pygeoapi builds a provider
per request: construction only reads the provider definition, which
:mod:`server.resources` filled in (columns, geometry, R-tree) once per version.

- GeoPackage: Python's sqlite3 only (see :mod:`server.providers.gpkg`), bbox
  through the R-tree, items through the primary key, the geometry blob
  decoded here; the CRS transformed with pyproj, vectorised.
- PostGIS: a connection pool per process (psycopg_pool; autocommit, read-only
  sessions), one round trip for most pages (counted only when the page does
  not tell how many match), bbox through the GIST index (``&&``, then the
  exact test), the CRS transformed with pyproj as on GeoPackage.

Limits are clamped by pygeoapi (``server.limits.max_items``); sortby,
properties, ``?name=value`` and CQL2 (:mod:`server.providers.cql`) become
bound SQL parameters and checked column names, never SQL text from the request.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

import numpy as np
from pygeoapi.provider.base import (BaseProvider, ProviderConnectionError, ProviderGenericError,
                                    ProviderInvalidQueryError, ProviderItemNotFoundError, ProviderQueryError)

from server.providers import gpkg
from server.providers.cql import Dialect, compile_filter, quote

log = logging.getLogger(__name__)

class VersionGone(ProviderGenericError):
    """The version this provider was bound to is gone (past retention): the worker's snapshot is stale."""

    http_status_code = 503
    default_msg = "the layer was just republished; retry"


MAX_OFFSET = 2**31 - 1  # beyond, a 400: no layer of the city has that many features
_INTEGER = ("INT", "SERIAL")
_NUMBER = ("REAL", "FLOAT", "DOUBLE", "NUMERIC", "DECIMAL")


def json_type(sql_type: str) -> dict[str, str]:
    """The JSON Schema type of a SQL column type (SQLite's or PostgreSQL's names)."""
    kind = sql_type.upper()
    if kind in ("BOOLEAN", "BOOL"):
        return {"type": "boolean"}
    if any(word in kind for word in _INTEGER):
        return {"type": "integer"}
    if any(word in kind for word in _NUMBER):
        return {"type": "number"}
    if kind == "DATE":
        return {"type": "string", "format": "date"}
    if "TIME" in kind:
        return {"type": "string", "format": "date-time"}
    return {"type": "string"}


@dataclass(frozen=True)
class _BoxIds:
    """A bbox whose matching ids are computed when the GeoPackage read starts (see ``_box_ids``)."""

    minx: float
    miny: float
    maxx: float
    maxy: float


class _Ids(str):
    """The JSON array of a box's ids (bound as text), with how many there are."""

    def __new__(cls, text: str, count: int) -> "_Ids":
        made = super().__new__(cls, text)
        made.count = count
        return made


@dataclass(frozen=True)
class _Page:
    rows: list[tuple]
    matched: int


class LuteceFeatures(BaseProvider):
    """Features of one vector version, from the GeoPackage or PostGIS store."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        from server.resources import SOURCES

        self.source: dict[str, Any] = SOURCES[provider_def["lutece"]]
        self.postgis = self.source["backend"] == "postgis"
        self.attributes: list[tuple[str, str]] = [tuple(pair) for pair in self.source["attributes"]]
        self._fields = {name: json_type(kind) for name, kind in self.attributes}
        self.geometry = self.source["geometry"]
        self.time_field = provider_def.get("time_field")
        self.pk = self.source["pk"]
        self.srid = int(self.source["srid"])

    def get_fields(self) -> dict:
        return self._fields

    def get_schema(self, schema_type=None):
        properties = {name: dict(kind) for name, kind in self._fields.items()}
        return "application/geo+json", {"$schema": "http://json-schema.org/draft/2019-09/schema",
                                        "type": "object", "properties": properties}

    # -- the OGC API operations -------------------------------------------------------------------
    def query(self, offset: int = 0, limit: int = 10, resulttype: str = "results", bbox: list | None = None,
              datetime_=None, properties: list | None = None, sortby: list | None = None,
              select_properties: list | None = None, skip_geometry: bool = False, q=None, filterq=None,
              crs_transform_spec=None, **kwargs) -> dict:
        if offset > MAX_OFFSET:
            raise ProviderInvalidQueryError(user_msg=f"offset {offset} is too large (at most {MAX_OFFSET})")
        where, params = self._where(bbox or [], properties or [], filterq)
        if datetime_ and self.time_field:
            self._datetime(where, params, datetime_)
        order = self._order(sortby or [])
        columns = self._columns(select_properties or [])
        _target_srid(crs_transform_spec, self.srid)  # a CRS without an EPSG code: refused here, as before
        reader = self._gpkg_page if not self.postgis else self._pg_page
        page = reader(columns, where, params, order, offset, limit, resulttype == "hits", skip_geometry)
        features = self._features(page.rows, columns, skip_geometry, crs_transform_spec)
        return {"type": "FeatureCollection", "features": features, "numberMatched": page.matched,
                "numberReturned": len(features)}

    def get(self, identifier, crs_transform_spec=None, **kwargs) -> dict:
        try:
            fid = int(str(identifier), 10)
        except ValueError:
            raise ProviderItemNotFoundError(user_msg="identifier not found") from None
        if not -2**63 <= fid < 2**63:
            raise ProviderItemNotFoundError(user_msg="identifier not found")
        columns = [name for name, _kind in self.attributes]
        _target_srid(crs_transform_spec, self.srid)
        where, params = [f"{quote(self.pk)} = {'%s' if self.postgis else '?'}"], [fid]
        reader = self._gpkg_page if not self.postgis else self._pg_page
        page = reader(columns, where, params, [], 0, 1, False, False, count=False)
        if not page.rows:
            raise ProviderItemNotFoundError(user_msg="identifier not found")
        return self._features(page.rows, columns, False, crs_transform_spec)[0]

    # -- SQL pieces (names checked, values bound) --------------------------------------------------
    def _mark(self) -> str:
        return "%s" if self.postgis else "?"

    def _where(self, bbox: list, properties: list, filterq) -> tuple[list[str], list]:
        where: list[str] = []
        params: list = []
        if bbox:
            if len(bbox) == 6:
                bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
            if len(bbox) != 4 or not all(np.isfinite(bbox)) or bbox[0] > bbox[2] or bbox[1] > bbox[3]:
                raise ProviderInvalidQueryError(user_msg="bbox must be 4 finite numbers minx,miny,maxx,maxy")
            where.append(self._bbox_sql(params, bbox))
        for name, value in properties:
            if name not in self._fields:
                raise ProviderInvalidQueryError(user_msg=f"unknown property {name!r}")
            where.append(f"{quote(name)} = {self._mark()}")
            params.append(_typed(value, self._fields[name]["type"], name))
        if filterq is not None:
            dialect = Dialect(self.postgis, self.geometry, self.srid, self._fields)
            condition, values = compile_filter(filterq, dialect)
            where.append(condition)
            params.extend(values)
        return where, params

    def _datetime(self, where: list, params: list, value: str) -> None:
        """``datetime=`` (an instant or ``start/end``, ``..`` open) on the time property, bounds included.

        A date without a time stands for its whole day. On GeoPackage the
        ISO text is compared through SQLite's ``julianday``; on PostGIS as
        ``timestamptz`` (the pool's sessions are in UTC).
        """
        start, end, end_included = _time_bounds(value)
        column = quote(self.time_field)
        if self.postgis:
            field, mark = f"{column}::timestamptz", "%s"
        else:
            field, mark = f"julianday({column})", "julianday(?)"
        if start is not None:
            where.append(f"{field} >= {mark}")
            params.append(start if self.postgis else start.isoformat())
        if end is not None:
            where.append(f"{field} {'<=' if end_included else '<'} {mark}")
            params.append(end if self.postgis else end.isoformat())

    def _bbox_sql(self, params: list, bbox: list) -> str:
        minx, miny, maxx, maxy = (float(v) for v in bbox)
        if self.postgis:
            params.extend([minx, miny, maxx, maxy] * 2)
            envelope = f"ST_MakeEnvelope(%s, %s, %s, %s, {self.srid})"
            return f"({quote(self.geometry)} && {envelope} AND ST_Intersects({quote(self.geometry)}, {envelope}))"
        if self.source.get("rtree") is None:
            raise ProviderQueryError(user_msg="the layer's spatial index is missing")
        params.append(_BoxIds(minx, miny, maxx, maxy))  # the ids, found in the read's own snapshot
        return f"{quote(self.pk)} IN (SELECT value FROM json_each(?))"

    def _box_ids(self, con, box: "_BoxIds") -> "_Ids":
        """The ids of the features meeting ``box``, as a JSON array: R-tree envelopes, then shapely where needed.

        Envelopes wholly inside the box need no exact test; the others are
        decoded and tested at once (vectorised), never row by row in SQL.
        """
        import shapely

        rows = con.execute(f"SELECT id, minx >= ? AND maxx <= ? AND miny >= ? AND maxy <= ? "
                           f"FROM {quote(self.source['rtree'])} WHERE minx <= ? AND maxx >= ? AND miny <= ? "
                           f"AND maxy >= ?", (box.minx, box.maxx, box.miny, box.maxy,
                                              box.maxx, box.minx, box.maxy, box.miny)).fetchall()
        ids = [fid for fid, inside in rows if inside]
        edge = [fid for fid, inside in rows if not inside]
        for chunk in range(0, len(edge), 5000):
            part = edge[chunk:chunk + 5000]
            found = con.execute(f"SELECT {quote(self.pk)}, {quote(self.geometry)} FROM {quote(self.source['table'])} "
                                f"WHERE {quote(self.pk)} IN (SELECT value FROM json_each(?))",
                                (json.dumps(part),)).fetchall()
            if found:
                meets = shapely.intersects(gpkg.geometries([blob for _fid, blob in found]),
                                           shapely.box(box.minx, box.miny, box.maxx, box.maxy))
                ids += [fid for (fid, _blob), hit in zip(found, meets) if hit]
        return _Ids(json.dumps(ids), len(ids))

    def _order(self, sortby: list) -> list[str]:
        order = []
        for item in sortby:
            name = item.get("property")
            if name not in self._fields:
                raise ProviderInvalidQueryError(user_msg=f"cannot sort by unknown property {name!r}")
            order.append(f"{quote(name)} {'DESC' if item.get('order') == '-' else 'ASC'}")
        return order

    def _columns(self, selected: list) -> list[str]:
        names = [name for name, _kind in self.attributes]
        if not selected:
            return names
        unknown = set(selected) - set(names)
        if unknown:
            raise ProviderInvalidQueryError(user_msg=f"unknown properties {', '.join(sorted(unknown))}")
        return [name for name in names if name in selected]

    # -- GeoPackage ------------------------------------------------------------------------------
    def _gpkg_page(self, columns, where, params, order, offset, limit, hits, skip_geometry,
                   count: bool = True) -> _Page:
        import sqlite3

        table = quote(self.source["table"])
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        fields = ", ".join([quote(self.pk), *(quote(c) for c in columns)]
                           + ([] if skip_geometry else [quote(self.geometry)]))
        ordering = ", ".join([*order, quote(self.pk)])
        try:
            with gpkg.snapshot(self.source["path"]) as con:
                params = [self._box_ids(con, p) if isinstance(p, _BoxIds) else p for p in params]
                if not count:
                    matched = 1
                elif len(where) == 1 and isinstance(params[0], _Ids):  # the box alone: its ids are the count
                    matched = params[0].count
                else:
                    matched = con.execute(f"SELECT count(*) FROM {table}{clause}", params).fetchone()[0]
                rows = [] if hits else con.execute(
                    f"SELECT {fields} FROM {table}{clause} ORDER BY {ordering} LIMIT ? OFFSET ?",
                    [*params, int(limit), int(offset)]).fetchall()
        except sqlite3.OperationalError as exc:
            log.error("GeoPackage query failed: %s", exc)
            if "no such table" in str(exc):
                raise VersionGone() from None
            raise ProviderQueryError(user_msg="the query could not be run on this layer") from None
        except (OverflowError, sqlite3.InterfaceError):
            raise ProviderInvalidQueryError(user_msg="a value of the query is out of range") from None
        return _Page(rows, matched)

    # -- PostGIS ---------------------------------------------------------------------------------
    def _pg_page(self, columns, where, params, order, offset, limit, hits, skip_geometry,
                 count: bool = True) -> _Page:
        """The page, then its count only where the page does not tell it: one round trip for most pages.

        A page shorter than ``limit`` (not empty, or at offset 0) ends the
        matches, so ``numberMatched`` is ``offset`` plus its length, exactly
        what ``count(*)`` would say (a version's table never changes); a
        full page, an empty one past the start, and ``resulttype=hits`` are
        counted. No transaction of our own (the pool's sessions are
        autocommit and read-only) and no server-side cursor: a page is
        bounded by ``max_items``, and DECLARE, FETCH and CLOSE were three
        round trips more. psycopg prepares a statement run often
        (``prepare_threshold``).
        """
        import psycopg

        table = f"{quote(self.source['schema'])}.{quote(self.source['table'])}"
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        # in the layer's CRS: reprojected here with pyproj, vectorised (ST_Transform cost PostgreSQL
        # 0.4 ms for 35 buildings, five times the rest of the statement)
        fields = ", ".join([quote(self.pk), *(quote(c) for c in columns)]
                           + ([] if skip_geometry else [f"ST_AsBinary({quote(self.geometry)})"]))
        ordering = ", ".join([*order, quote(self.pk)])
        try:
            with pool(self.source["dsn"]).connection() as con:
                rows: list = []
                if not hits:
                    rows = con.execute(f"SELECT {fields} FROM {table}{clause} ORDER BY {ordering} LIMIT %s OFFSET %s",
                                       [*params, int(limit), int(offset)]).fetchall()
                if not count:
                    return _Page(rows, 1)
                if not hits and len(rows) < int(limit) and (rows or not offset):
                    return _Page(rows, int(offset) + len(rows))
                return _Page(rows, con.execute(f"SELECT count(*) FROM {table}{clause}", params).fetchone()[0])
        except psycopg.errors.UndefinedTable:
            raise VersionGone() from None
        except (psycopg.errors.DataError, psycopg.errors.NumericValueOutOfRange, psycopg.errors.SyntaxError,
                psycopg.errors.UndefinedFunction, psycopg.errors.InvalidParameterValue,
                psycopg.errors.InternalError_, OverflowError) as exc:
            log.info("PostGIS refused a query: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise ProviderInvalidQueryError(user_msg="a value of the query is out of range or invalid") from None
        except psycopg.OperationalError as exc:
            log.error("PostGIS unreachable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise ProviderConnectionError(user_msg="the store is unreachable, retry later") from None

    # -- GeoJSON ---------------------------------------------------------------------------------
    def _features(self, rows, columns, skip_geometry, crs_transform_spec) -> list[dict]:
        import shapely

        if not rows:
            return []
        if not skip_geometry:
            blobs = [row[-1] for row in rows]
            if self.postgis:
                geometries = shapely.from_wkb(np.array([None if b is None else bytes(b) for b in blobs],
                                                       dtype=object))
            else:
                geometries = gpkg.geometries(blobs)
            if crs_transform_spec is not None:
                geometries = _transform(geometries, crs_transform_spec.source_crs_wkt,
                                        crs_transform_spec.target_crs_wkt)
            texts = shapely.to_geojson(geometries)
            # one parse of the page's geometries (an array), not one per feature
            parsed = orjson.loads("[" + ",".join("null" if text is None else text for text in texts) + "]")
        else:
            parsed = [None] * len(rows)
        features = []
        end = 1 + len(columns)
        for row, geometry in zip(rows, parsed):
            properties = dict(zip(columns, row[1:end]))
            for name, value in properties.items():  # values only replaced: the dict keeps its size
                if type(value) not in _PLAIN:
                    properties[name] = (value if value - value == 0 else None) if type(value) is float \
                        else _json_value(value)  # a float: NaN and infinities (x - x is not 0) as null
            features.append({"type": "Feature", "id": row[0], "geometry": geometry, "properties": properties})
        return features


# -- helpers -------------------------------------------------------------------------------------------
def _time_bounds(value: str):
    """(start, end, end included?) of a ``datetime`` parameter as UTC datetimes (None: open).

    A date-only end stands for its whole day: the next midnight, excluded.
    """
    from datetime import timedelta, timezone

    from dateutil.parser import isoparse

    parts = value.split("/") if "/" in value else [value, value]
    if len(parts) != 2:
        raise ProviderInvalidQueryError(user_msg="datetime must be an instant or start/end")
    bounds = []
    end_included = True
    for index, part in enumerate(parts):
        part = part.strip()
        if part in ("", ".."):
            bounds.append(None)
            continue
        try:
            moment = isoparse(part)
        except (ValueError, OverflowError):
            raise ProviderInvalidQueryError(user_msg=f"datetime {part!r} is not an RFC 3339 date or time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        if index == 1 and len(part) == 10:
            moment += timedelta(days=1)
            end_included = False
        bounds.append(moment.astimezone(timezone.utc))
    return bounds[0], bounds[1], end_included


def _typed(value: str, kind: str, name: str):
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            number = float(value)
            if not np.isfinite(number):
                raise ValueError
            return number
        if kind == "boolean":
            return {"true": True, "false": False, "1": True, "0": False}[value.lower()]
    except (ValueError, KeyError):
        raise ProviderInvalidQueryError(user_msg=f"{name}={value!r} is not a {kind}") from None
    return value


_PLAIN = frozenset((int, str, type(None), bool))


def _json_value(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, memoryview)):
        return None
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _target_srid(crs_transform_spec, storage_srid: int) -> int:
    """The EPSG code of the output CRS (CRS84 as 4326); a CRS without one is refused (a 400)."""
    if crs_transform_spec is None:
        return storage_srid
    return _srid_of_wkt(crs_transform_spec.target_crs_wkt)


@lru_cache(maxsize=32)
def _srid_of_wkt(wkt: str) -> int:
    from pyproj import CRS

    crs = CRS.from_wkt(wkt)
    code = crs.to_epsg() or (4326 if crs.name.startswith("WGS 84") else None)
    if code is None:
        raise ProviderInvalidQueryError(user_msg="this CRS is not supported")
    return int(code)


@lru_cache(maxsize=32)
def _transformer(source_wkt: str, target_wkt: str):
    from pyproj import Transformer

    return Transformer.from_crs(source_wkt, target_wkt, always_xy=True)


def _transform(geometries: np.ndarray, source_wkt: str, target_wkt: str) -> np.ndarray:
    """All geometries to the target CRS in one vectorised pyproj call (x and y; a z is kept, as ST_Transform does)."""
    import shapely

    transformer = _transformer(source_wkt, target_wkt)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y, *coords.T[2:]])

    has_z = shapely.has_z(geometries)
    if not has_z.any():
        return shapely.transform(geometries, project)
    moved = np.empty_like(geometries)
    moved[has_z] = shapely.transform(geometries[has_z], project, include_z=True)
    moved[~has_z] = shapely.transform(geometries[~has_z], project)
    return moved


_POOLS: dict[str, Any] = {}
_POOLS_LOCK = threading.Lock()
_POOLS_PID = os.getpid()


def pool(dsn: str):
    """This process' connection pool to ``dsn`` (made after gunicorn's fork, never shared with the parent)."""
    global _POOLS_PID
    from psycopg_pool import ConnectionPool

    with _POOLS_LOCK:
        if _POOLS_PID != os.getpid():
            _POOLS.clear()  # the parent's pools: never touch their sockets
            _POOLS_PID = os.getpid()
        found = _POOLS.get(dsn)
        if found is None:
            # autocommit: a statement is its own (implicit) transaction, no BEGIN/COMMIT round trips;
            # read-only for the whole session, so no statement of the server can ever write
            found = ConnectionPool(dsn, min_size=1, max_size=int(os.environ.get("LUTECE_POOL_SIZE", "4")),
                                   kwargs={"application_name": "lutece-server", "connect_timeout": 5,
                                           "autocommit": True,
                                           "options": "-c timezone=UTC -c default_transaction_read_only=on"},
                                   open=True, name="lutece-server")
            _POOLS[dsn] = found
        return found


def close_pools() -> None:
    """Close this process' pools (clean shutdown)."""
    with _POOLS_LOCK:
        if _POOLS_PID == os.getpid():
            for opened in _POOLS.values():
                opened.close()
        _POOLS.clear()
