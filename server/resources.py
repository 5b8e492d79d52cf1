"""pygeoapi's resource configuration, generated from the catalog and followed live.

Nothing here is written by hand per layer: a :class:`Snapshot` is built from
the catalog (every served layer with its current version, i.e. not
``internal`` and not withdrawn) and turned into pygeoapi resources by the
builder of the layer's kind (:data:`RESOURCE_BUILDERS`; other packages of
the server add theirs, e.g. 3D Tiles). A :class:`Follower` thread in each
worker reads the catalog's change feed and the API keys every
``poll_interval`` seconds and swaps in a new snapshot and keyring, so a
publication, rollback, withdrawal, reclassification or revocation reaches
every worker within a few seconds. A snapshot is never changed once built,
and each provider definition names one version's table, so a request in
flight keeps reading the version it started with.

A caller's view (:meth:`Snapshot.resources_for`) keeps only the layers
:func:`server.access.can_see` lets it see.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gis.records import Layer, Version

from server.access import Caller, Keyring, can_see

log = logging.getLogger(__name__)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
SERVED_CRS = (CRS84, "http://www.opengis.net/def/crs/EPSG/0/2154", "http://www.opengis.net/def/crs/EPSG/0/3857")
FEATURES_PROVIDER = "server.providers.features.LuteceFeatures"


def crs_uri(crs: str | None) -> str:
    """``EPSG:2154`` -> ``http://www.opengis.net/def/crs/EPSG/0/2154``."""
    authority, _, code = (crs or "EPSG:2154").partition(":")
    return f"http://www.opengis.net/def/crs/{authority.upper()}/0/{code}"


@dataclass(frozen=True)
class Collection:
    """A served layer: its catalog records and its pygeoapi resource."""

    layer: Layer
    version: Version
    resource: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """The served layers and their collections at one position of the change feed (never changed once built).

    ``layers`` holds every layer that may be served (not internal, not
    withdrawn), whatever its kind; ``collections`` those of them that have a
    pygeoapi resource.
    """

    seq: int
    collections: dict[str, Collection]
    generation: int = 0
    built: float = field(default_factory=time.time)
    layers: dict[str, Layer] = field(default_factory=dict)

    def visible_ids(self, caller: Caller | None) -> frozenset[str]:
        return frozenset(cid for cid, c in self.collections.items() if can_see(caller, c.layer))

    def layer_for(self, caller: Caller | None, layer_id: str) -> Layer | None:
        """The layer ``layer_id`` as this snapshot serves it when ``caller`` may see it, else None."""
        layer = self.layers.get(layer_id)
        return layer if can_see(caller, layer) else None

    def collection_for(self, caller: Caller | None, layer_id: str) -> Collection | None:
        """The collection ``layer_id`` when ``caller`` may see it, else None (as for a layer that does not exist)."""
        collection = self.collections.get(layer_id)
        return collection if collection is not None and can_see(caller, collection.layer) else None

    def resources_for(self, caller: Caller | None) -> dict[str, dict]:
        return {cid: c.resource for cid, c in self.collections.items() if can_see(caller, c.layer)}


# -- resources per kind ------------------------------------------------------------------------------
Builder = Callable[[Layer, Version, Any, dict], "dict | None"]
#: kind -> builder(layer, version, catalog, settings) returning a pygeoapi resource (None: not served).
RESOURCE_BUILDERS: dict[str, Builder] = {}


def register_builder(kind: str, builder: Builder) -> None:
    """Serve layers of ``kind`` through ``builder`` (replaces the previous one)."""
    RESOURCE_BUILDERS[kind] = builder


def base_resource(layer: Layer, version: Version) -> dict[str, Any]:
    """The parts of a pygeoapi resource every kind shares: titles, keywords, extent, licence link."""
    resource: dict[str, Any] = {
        "type": "collection",
        "title": layer.title,
        "description": layer.description or layer.title,
        "keywords": list(layer.keywords) or [layer.theme or layer.kind],
        "links": _licence_links(layer.licence),
        "extents": {"spatial": {"bbox": _bbox_crs84(version.extent or layer.extent, version.crs or layer.crs),
                                "crs": CRS84}},
        "providers": [],
    }
    return resource


def _licence_links(licence_id: str) -> list[dict]:
    """The collection's ``license`` link (none for a licence without a public URI)."""
    from gis.catalog.licences import LICENCES

    licence = LICENCES.get(licence_id)
    if licence is None or not licence.uri:
        return []
    return [{"type": "text/html", "rel": "license", "title": licence.title, "href": licence.uri}]


def vector_resource(layer: Layer, version: Version, catalog, settings: dict) -> dict | None:
    """A vector layer: OGC API Features through :class:`server.providers.features.LuteceFeatures`."""
    table = version.storage.removeprefix("table:")
    source = describe_table(catalog, table)
    resource = base_resource(layer, version)
    time_field = next((name for name, kind in source["attributes"] if _is_time(kind)), None)
    if time_field is not None and source.get("time_extent"):
        begin, end = source["time_extent"]
        # whole days: pygeoapi checks a date-only datetime= as its midnight against this interval
        begin = begin.replace(hour=0, minute=0, second=0, microsecond=0)
        end = end.replace(hour=23, minute=59, second=59, microsecond=999999)
        resource["extents"]["temporal"] = {"begin": begin, "end": end}
    resource["providers"] = [{
        "type": "feature",
        "name": FEATURES_PROVIDER,
        "data": f"{layer.id}@{version.number}",
        "id_field": "id",
        "storage_crs": crs_uri(version.crs or layer.crs),
        "crs": list(SERVED_CRS),
        "lutece": register_source(source),
        **({"time_field": time_field} if time_field else {}),
    }]
    return resource


def _is_time(sql_type: str) -> bool:
    kind = sql_type.upper()
    return kind == "DATE" or kind.startswith(("DATETIME", "TIMESTAMP"))


def _time_extent(source: dict) -> tuple | None:
    """The first time property's (begin, end) as UTC datetimes, read once per version (None when empty)."""
    from datetime import datetime, time, timezone

    from dateutil.parser import isoparse

    name = next((name for name, kind in source["attributes"] if _is_time(kind)), None)
    if name is None:
        return None
    column = '"' + name.replace('"', '""') + '"'
    if source["backend"] == "postgis":
        from server.providers.features import pool

        with pool(source["dsn"]).connection() as con:
            row = con.execute(f'SELECT min({column})::text, max({column})::text '
                              f'FROM "{source["schema"]}"."{source["table"]}"').fetchone()
    else:
        from server.providers import gpkg

        with gpkg.snapshot(source["path"]) as con:
            row = con.execute(f'SELECT min({column}), max({column}) FROM "{source["table"]}"').fetchone()
    if row is None or row[0] is None:
        return None
    bounds = []
    for text in row:
        moment = isoparse(str(text).replace(" ", "T"))
        if not isinstance(moment, datetime):
            moment = datetime.combine(moment, time())
        bounds.append(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
    return tuple(bounds)


_DESCRIPTIONS: dict[tuple, dict] = {}
#: token -> where a version's table is (path or DSN included); kept out of pygeoapi's configuration,
#: which its HTML templates receive whole.
SOURCES: dict[str, dict] = {}


def register_source(source: dict) -> str:
    """A token naming ``source`` in :data:`SOURCES` (the same token for the same table)."""
    token = f"{source['backend']}:{source['table']}:{abs(hash((source.get('path'), source.get('dsn')))):x}"
    SOURCES[token] = source
    return token


def describe_table(catalog, table: str) -> dict:
    """Where and how a version's table is stored (columns, key, geometry, index); cached: versions never change."""
    backend = catalog.backend
    where = str(backend.gpkg) if backend.name == "geopackage" else backend.dsn
    key = (backend.name, where, table)
    found = _DESCRIPTIONS.get(key)
    if found is not None:
        return found
    if backend.name == "geopackage":
        from server.providers import gpkg

        described = gpkg.describe(backend.gpkg, table)
        described.update(backend="geopackage", path=str(backend.gpkg), table=table)
    else:
        described = _describe_postgis(backend, table)
    described["time_extent"] = _time_extent(described)
    _DESCRIPTIONS[key] = described
    return described


def _describe_postgis(backend, table: str) -> dict:
    from gis.backends.postgis import DATA_SCHEMA, FID

    with backend._cursor() as cur:
        cur.execute("SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = %s::regclass "
                    "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (f'{DATA_SCHEMA}."{table}"',))
        columns = cur.fetchall()
        geometry = next(name for name, kind in columns if kind == "geometry")
        cur.execute("SELECT srid, type FROM geometry_columns WHERE f_table_schema=%s AND f_table_name=%s",
                    (DATA_SCHEMA, table))
        row = cur.fetchone()
    srid, geometry_type = (row if row else (0, "GEOMETRY"))
    return {"backend": "postgis", "dsn": backend.dsn, "schema": DATA_SCHEMA, "table": table, "pk": FID,
            "geometry": geometry, "geometry_type": geometry_type, "srid": srid,
            "attributes": [(name, kind) for name, kind in columns if name not in (FID, geometry)]}


def _bbox_crs84(extent, crs: str | None) -> list[float]:
    if not extent:
        return [-180.0, -90.0, 180.0, 90.0]
    from pyproj import Transformer

    transformer = Transformer.from_crs(crs or "EPSG:2154", "OGC:CRS84", always_xy=True)
    minx, miny, maxx, maxy = transformer.transform_bounds(*extent)
    return [round(minx, 7), round(miny, 7), round(maxx, 7), round(maxy, 7)]


class CoverageInfo:
    """What pygeoapi asks a coverage provider for when it describes a raster collection (no data read).

    The coverage itself and the map are answered by :mod:`server.routes.coverages`;
    pygeoapi only lists the collection, links them and describes its grid.
    """

    def __new__(cls, provider_def: dict):
        from pygeoapi.provider.base import BaseProvider

        class _Info(BaseProvider):
            def __init__(self, definition: dict) -> None:
                super().__init__(definition)
                info = SOURCES[definition["lutece"]]
                self._coverage_properties = info["properties"]
                self._fields = info["fields"]
                self.axes = ["x", "y"]

            def get_fields(self) -> dict:
                return self._fields

        return _Info(provider_def)


def raster_resource(layer: Layer, version: Version, catalog, settings: dict) -> dict | None:
    """A raster layer: listed with its grid, and links to its coverage (GeoTIFF) and map (PNG)."""
    path = catalog.backend.files_path(version)
    key = ("raster", str(path))
    info = _DESCRIPTIONS.get(key)
    if info is None:
        import rasterio

        with rasterio.open(path) as dataset:
            resx, resy = dataset.res
            info = {"backend": "files", "table": version.checksum,
                    "properties": {"width": dataset.width, "height": dataset.height, "resx": resx, "resy": resy},
                    "fields": {f"band{index}": {"type": "number", "title": f"band {index}"}
                               for index in range(1, dataset.count + 1)}}
        _DESCRIPTIONS[key] = info
    resource = base_resource(layer, version)
    resource["providers"] = [
        {"type": "coverage", "name": "server.resources.CoverageInfo", "data": f"{layer.id}@{version.number}",
         "lutece": register_source(info), "format": {"name": "GeoTIFF", "mimetype": "image/tiff; application=geotiff"}},
        {"type": "map", "name": "server.resources.CoverageInfo", "data": f"{layer.id}@{version.number}",
         "lutece": register_source(info), "format": {"name": "png", "mimetype": "image/png"}},
    ]
    return resource


def tileset_resource(layer: Layer, version: Version, catalog, settings: dict) -> dict | None:
    """A 3D Tiles layer: listed here; its collection document and files are :mod:`server.routes.tiles3d`'s."""
    resource = base_resource(layer, version)
    resource["links"].append({"type": "application/json", "rel": "items", "title": "3D Tiles tileset",
                              "href": f"{settings['url']}/collections/{layer.id}/3dtiles"})
    resource["providers"] = [{"type": "3dtiles", "name": "none", "data": f"{layer.id}@{version.number}"}]
    return resource


def cityjson_resource(layer: Layer, version: Version, catalog, settings: dict) -> dict | None:
    """A CityJSON layer: listed and described by pygeoapi, linking to its file (:mod:`server.routes.cityjson`)."""
    from server.routes.cityjson import links

    resource = base_resource(layer, version)
    resource["links"] += links(settings["url"], layer.id, catalog.backend.files_path(version).stat().st_size)
    resource["providers"] = [{"type": "cityjson", "name": "none", "data": f"{layer.id}@{version.number}"}]
    return resource


register_builder("vector", vector_resource)
register_builder("raster", raster_resource)
register_builder("pointcloud-3dtiles", tileset_resource)
register_builder("mesh-3dtiles", tileset_resource)
register_builder("cityjson", cityjson_resource)


# -- building a snapshot -----------------------------------------------------------------------------
def build_snapshot(catalog, settings: dict, generation: int = 0) -> Snapshot:
    """Every served layer of the catalog as a pygeoapi resource, at the feed's current position.

    The feed position is read first: a change landing while the snapshot is
    built is seen again by the next poll (a snapshot may be newer than its
    ``seq``, never older).
    """
    seq = last_seq(catalog)
    collections: dict[str, Collection] = {}
    layers: dict[str, Layer] = {}
    for layer in catalog.layers():
        if layer.access == "internal" or layer.current_version is None:
            continue  # never served: not even built
        layers[layer.id] = layer
        builder = RESOURCE_BUILDERS.get(layer.kind)
        if builder is None:
            continue
        try:
            version = catalog.version(layer.id)
            resource = builder(layer, version, catalog, settings)
        except Exception:  # one broken layer must not take the others down
            log.exception("layer %s cannot be served; left out", layer.id)
            continue
        if resource is not None:
            collections[layer.id] = Collection(layer, version, resource)
    return Snapshot(seq, collections, generation, layers=layers)


def last_seq(catalog) -> int:
    """The change feed's last sequence number (0 when empty)."""
    backend = catalog.backend
    if backend.name == "postgis":
        with backend._cursor() as cur:
            cur.execute("SELECT coalesce(max(seq), 0) FROM lutece.changes")
            return int(cur.fetchone()[0])
    with backend._read() as con:
        return int(con.execute("SELECT coalesce(max(seq), 0) FROM lutece_changes").fetchone()[0])


class Follower:
    """Keeps this worker's snapshot and keyring up to date with the catalog (a daemon thread).

    Parameters
    ----------
    open_catalog
        Opens the catalog (called in the thread that uses it).
    settings
        The server settings (``poll_interval`` seconds).
    """

    def __init__(self, open_catalog: Callable[[], Any], settings: dict) -> None:
        from gis.backends.keys import KeyStore

        self.settings = settings
        self.interval = float(settings.get("poll_interval", 1.0))
        self._lock = threading.Lock()  # the catalog's connection is used by one thread at a time
        self.catalog = open_catalog()
        self._keys = KeyStore(self.catalog.backend)
        self.keyring = Keyring()
        self._key_state: tuple = ()
        self.generation = 0
        self.snapshot = build_snapshot(self.catalog, settings)
        self._refresh_keys()
        self.last_poll = time.time()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Follower":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lutece-follower", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self.catalog.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> bool:
        """Read the feed and the keys once; return whether the snapshot changed."""
        try:
            with self._lock:
                changed = bool(self.catalog.events(after=self.snapshot.seq, limit=1))
                if changed:
                    self.generation += 1
                    self.snapshot = build_snapshot(self.catalog, self.settings, self.generation)
                    log.info("catalog changed: now at change %d, %d collections", self.snapshot.seq,
                             len(self.snapshot.collections))
                self._refresh_keys()
            self.last_poll, self.last_error = time.time(), None
            return changed
        except Exception as exc:  # the store may be down for a while: keep serving what we have
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("cannot follow the catalog: %s", self.last_error)
            return False

    def _refresh_keys(self) -> None:
        keys = self._keys.list()
        state = tuple((k.key_id, k.revoked, k.expires, k.layers) for k in keys)
        if state != self._key_state:
            self.keyring.replace(keys)
            self._key_state = state

    def health(self) -> dict[str, Any]:
        """Whether the store answers now, and where the feed is."""
        try:
            with self._lock:
                seq = last_seq(self.catalog)
            reachable, error = True, None
        except Exception as exc:
            seq, reachable, error = None, False, type(exc).__name__
        return {"store": "ok" if reachable else "unreachable", "backend": self.catalog.backend.name,
                "feed_position": seq, "served_position": self.snapshot.seq,
                "collections": len(self.snapshot.collections),
                "last_poll_age_s": round(time.time() - self.last_poll, 3), "error": error}
