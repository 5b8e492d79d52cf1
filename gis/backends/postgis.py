"""The production backend: PostgreSQL 15 + PostGIS 3 (psycopg 3), files through the shared :class:`FileStore`.

Layout in the database of ``store.dsn`` (the password comes from the
environment, ``PGPASSWORD`` or ``~/.pgpass``, never from ``lutece.yml``)::

    lutece.meta                     schema version
    lutece.layers                   one row per layer, with its current version and revision
    lutece.versions                 one row per retained version
    lutece.changes                  the change feed (seq: an identity, appended in commit order)
    lutece.pending                  publications in progress (for conflicts and gc)
    lutece_data."<layer>__v<N>"     the features of each vector version, one table each,
                                    loaded by one binary COPY, with a primary key, a GIST
                                    index on the geometry and planner statistics

and ``store.path``/``files/`` for rasters and 3D Tiles (content-addressed, as
on the GeoPackage backend).

Publication: the claim is a row of ``lutece.pending`` plus a session advisory
lock held by the publishing connection (so a killed publisher's claim is seen
dead as soon as the server drops its connection); the data table is created,
loaded and indexed in its own transaction where no reader looks; then ONE
transaction switches the layer's current version (row lock + revision check),
inserts the version and appends the change event. The change feed's table is
locked in EXCLUSIVE mode (readers still read) by every transaction that appends
to it, so sequence numbers become visible in increasing order and a follower
never skips one.

Readers are never broken by a swap: the switch only updates catalog rows, no
table is dropped in that transaction. Tables of versions past retention are
dropped after the commit with a short ``lock_timeout``: a reader holding such a
table keeps it, and the table is left for :meth:`PostGISBackend.gc`.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from hashlib import sha1
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from gis.backends import pg_names
from gis.backends.base import Publication, SqlBackend, publisher_alive
from gis.backends.files import FileStore
from gis.backends.pg_copy import FIXED, TIMESTAMPS, copy_data
from gis.checksums import geometry_wkb
from gis.errors import DependencyError, InputError, LayerNotFound, StoreError
from gis.records import Version

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
CATALOG_SCHEMA = "lutece"
DATA_SCHEMA = "lutece_data"
FID = "lutece_fid"
CONNECT_TIMEOUT_S = 5
DROP_LOCK_TIMEOUT = "200ms"
VERSION_TABLE = re.compile(r"^[a-z0-9_]+__v[0-9]+$")
_LOCK_NAMESPACE = 0x4C55  # "LU": the first key of Lutèce's advisory locks

TABLES = f"""
CREATE SCHEMA IF NOT EXISTS {CATALOG_SCHEMA};
CREATE SCHEMA IF NOT EXISTS {DATA_SCHEMA};
CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.layers (
    id text PRIMARY KEY,
    title text NOT NULL,
    title_en text,
    description text NOT NULL DEFAULT '',
    description_en text,
    keywords jsonb NOT NULL DEFAULT '[]',
    theme text,
    producer text,
    kind text NOT NULL,
    crs text,
    extent jsonb,
    update_frequency text,
    licence text NOT NULL,
    access text NOT NULL,
    current_version integer,
    last_version integer NOT NULL DEFAULT 0,
    revision integer NOT NULL DEFAULT 0,
    created text NOT NULL,
    updated text NOT NULL
);
CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.versions (
    layer_id text NOT NULL REFERENCES {CATALOG_SCHEMA}.layers(id),
    number integer NOT NULL,
    checksum text NOT NULL,
    storage text NOT NULL,
    publisher text NOT NULL,
    published text NOT NULL,
    kind text NOT NULL,
    crs text,
    extent jsonb,
    features bigint,
    note text NOT NULL DEFAULT '',
    lineage jsonb NOT NULL DEFAULT '{{}}',
    PRIMARY KEY (layer_id, number)
);
CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.changes (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer_id text NOT NULL,
    action text NOT NULL,
    version integer,
    previous_version integer,
    access_before text,
    access_after text,
    licence text,
    time text NOT NULL
);
CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.pending (
    token text PRIMARY KEY,
    layer_id text NOT NULL,
    number integer NOT NULL,
    storage text,
    pid integer NOT NULL,
    host text NOT NULL,
    started text NOT NULL
);
INSERT INTO {CATALOG_SCHEMA}.meta VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING;
"""

# pandas dtype -> PostgreSQL type, and back (so that a version reads back with its checksum).
_PG_TYPES = {"bool": "boolean", "int16": "smallint", "int32": "integer", "int64": "bigint", "uint8": "smallint",
             "uint16": "integer", "uint32": "bigint", "float32": "real", "float64": "double precision",
             # pandas' nullable types: the same columns, NULL where a value is missing
             "boolean": "boolean", "Int8": "smallint", "Int16": "smallint", "Int32": "integer", "Int64": "bigint",
             "UInt8": "smallint", "UInt16": "integer", "UInt32": "bigint", "Float32": "real",
             "Float64": "double precision"}
_NUMPY_TYPES = {"boolean": "bool", "smallint": "int16", "integer": "int32", "bigint": "int64", "real": "float32",
                "double precision": "float64"}

_NULLABLE = {"bool": "boolean", "int16": "Int16", "int32": "Int32", "int64": "Int64", "float32": "Float32",
             "float64": "Float64"}


def table_name(layer_id: str, number: int) -> str:
    """The data table of a vector version, e.g. ``hotel_de_ville__v3`` (within PostgreSQL's 63 bytes)."""
    base = layer_id.replace("-", "_")
    suffix = f"__v{number}"
    if len(base) + len(suffix) > 63:
        base = f"{base[:40]}_{sha1(layer_id.encode()).hexdigest()[:10]}"
    return base + suffix


def describe_dsn(dsn: str) -> str:
    """``host:port/dbname`` of a connection string, without its password."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(dsn)
    except Exception:
        return "the server of store.dsn"
    host = info.get("host") or os.environ.get("PGHOST") or "localhost"
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = info.get("dbname") or os.environ.get("PGDATABASE") or info.get("user") or "postgres"
    return f"{host}:{port}/{dbname}"


class PostGISBackend(SqlBackend):
    """The city GIS in a PostgreSQL + PostGIS database and a file store folder.

    Parameters
    ----------
    store
        The ``store`` section: ``dsn`` (required), ``path`` (the folder of
        rasters and 3D Tiles, default ``city``).
    create
        Create the schemas, tables and the ``postgis`` extension when missing
        (else raise :class:`~gis.errors.StoreError`).
    """

    name = "postgis"
    PREFIX = f"{CATALOG_SCHEMA}."
    ROW_LOCK = " FOR UPDATE"

    def __init__(self, store: dict[str, Any], create: bool = True) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise DependencyError("the PostGIS backend needs psycopg 3; run 'pip install \"psycopg[binary]>=3.1\"'") \
                from None
        dsn = store.get("dsn")
        if not dsn:
            raise StoreError("store.dsn is required by the postgis backend (e.g. 'host=db.city dbname=gis user=gis', "
                             "password from PGPASSWORD)")
        self.dsn = dsn
        self.where = describe_dsn(dsn)
        self.files = FileStore(Path(store.get("path", "city")) / "files")
        self._con = None
        self._pid = os.getpid()
        con = self._connection()
        with con.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL, to_regtype('geometry') IS NOT NULL",
                        (f"{CATALOG_SCHEMA}.layers",))
            exists, has_postgis = cur.fetchone()
        if not exists:
            if not create:
                raise StoreError(f"no city GIS in the database {self.where} (store.dsn); publish a layer to create it")
            self._create()
        elif not has_postgis:
            raise StoreError(f"{self.where}: the postgis extension is missing; run 'CREATE EXTENSION postgis'")

    # -- connection -------------------------------------------------------------------------------
    def _connection(self):
        import psycopg

        if self._con is not None and self._pid != os.getpid():
            self._con = None  # inherited through fork: the parent's, never touch it
        if self._con is None or self._con.closed:
            self._pid = os.getpid()
            try:
                self._con = psycopg.connect(self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                            application_name="lutece")
            except psycopg.OperationalError as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise StoreError(f"cannot connect to PostGIS at {self.where} ({reason[:300]}); start the server "
                                 f"(e.g. 'pg_ctlcluster 15 main start') or fix store.dsn in lutece.yml") from None
        return self._con

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor in autocommit mode (each statement its own transaction)."""
        import psycopg

        try:
            with self._connection().cursor() as cur:
                yield cur
        except psycopg.OperationalError as exc:
            self._lost(exc)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction, committed at the end of the block."""
        import psycopg

        con = self._connection()
        try:
            with con.transaction(), con.cursor() as cur:
                yield cur
        except psycopg.OperationalError as exc:
            self._lost(exc)

    def _lost(self, exc: Exception) -> None:
        """Turn a broken connection into one clear error; other server errors pass through."""
        con = self._con
        if getattr(exc, "sqlstate", None) is not None and con is not None and not con.broken:
            raise exc
        self._con = None
        reason = " ".join(str(exc).split())[:300]
        raise StoreError(f"lost the connection to PostGIS at {self.where} ({reason}); nothing was changed by the "
                         f"interrupted operation, check the server and retry") from None

    def close(self) -> None:
        if self._con is not None and self._pid == os.getpid():
            self._con.close()
        self._con = None

    def _create(self) -> None:
        import psycopg

        try:
            with self._transaction() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_NAMESPACE,))
                cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                cur.execute(TABLES)
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())[:300]
            raise StoreError(f"{self.where}: cannot create the catalog ({reason}); the user of store.dsn needs "
                             f"CREATE on the database, and the postgis extension must be installed") from None

    # -- what the SQL protocol needs (see SqlBackend) ---------------------------------------------
    def _reading(self):
        return self._cursor()

    def _writing(self):
        return self._transaction()

    def _run(self, cur, statement: str, params: tuple = ()):
        cur.execute(statement.replace("?", "%s"), params)
        return cur

    def _json(self, value: Any) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value)

    def _drop_table(self, cur, table: str) -> bool:
        return self._drop(table)  # a savepoint under a lock timeout: a table a reader holds stays for gc

    def _version_tables(self, cur) -> set[str]:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname=%s", (DATA_SCHEMA,))
        return {name for (name,) in cur.fetchall() if VERSION_TABLE.match(name)}

    def _lock_layer(self, cur, layer_id: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, layer_id))

    def _lock_feed(self, cur) -> None:
        """Sequence numbers become visible in increasing order (readers still read the feed)."""
        cur.execute(f"LOCK TABLE {CATALOG_SCHEMA}.changes IN EXCLUSIVE MODE")

    def _lock_claims(self, cur) -> None:
        cur.execute(f"LOCK TABLE {CATALOG_SCHEMA}.pending IN SHARE ROW EXCLUSIVE MODE")

    def _hold_claim(self, cur, publication: Publication) -> None:
        # Held by this connection until commit/abort, released by the server if the publisher dies.
        cur.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, publication.token))

    def _let_go(self, publication: Publication) -> None:
        with self._cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_LOCK_NAMESPACE, publication.token))

    def _claim_alive(self, cur, token: str, pid: int, host: str, started: str) -> bool:
        """Whether a claim's publisher may still be running.

        Its connection holds an advisory lock on the token until commit or
        abort; the server releases it when the publisher dies. On this host, a
        publisher whose process is gone is dead even while the server has not
        noticed yet.
        """
        if not publisher_alive(pid, host, started):
            return False
        cur.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, token))
        return not cur.fetchone()[0]  # taken: nobody held it (released at the end of this transaction)

    # -- reading and writing features -------------------------------------------------------------
    def read_vector(self, version: Version, bbox=None):
        """The features of a version, read in one transaction that first locks its table (ACCESS SHARE).

        Once locked, the table stays whole until the read ends, whatever is
        published meanwhile; a table already dropped (version past retention)
        gives :class:`~gis.errors.LayerNotFound`.
        """
        import psycopg
        from psycopg import sql

        table = version.storage.removeprefix("table:")
        ident = sql.Identifier(DATA_SCHEMA, table)
        con = self._connection()
        try:
            with con.transaction(), con.cursor(binary=True) as cur:
                try:
                    cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(ident))
                except psycopg.errors.UndefinedTable:
                    raise LayerNotFound(f"layer {version.layer_id} version {version.number}: its data is gone "
                                        f"(past retention); see 'lutece layers history {version.layer_id}'") from None
                columns = _data_columns(cur, table)
                return _read_frame(cur, ident, columns, version, bbox)
        except psycopg.OperationalError as exc:
            self._lost(exc)

    def store_vector(self, publication: Publication, frame, wkb=None) -> str:
        """Load the features with one binary COPY, then add the primary key, the GIST index and the statistics.

        The table is created, loaded and indexed in one transaction, and no
        reader looks at it before the version is committed. The features are
        numbered (``lutece_fid``) in their order; geometries go as the WKB
        already computed for the checksum, and PostGIS gives them the column's
        SRID (``geometry(Geometry, <srid>)``).
        """
        from psycopg import sql

        table = table_name(publication.layer_id, publication.number)
        storage = f"table:{table}"
        self._claim_storage(publication, storage)
        ident = sql.Identifier(DATA_SCHEMA, table)
        geometry = frame.geometry.name
        srid = _srid(frame)
        attributes = [name for name in frame.columns if name != geometry]
        if FID in attributes:
            raise InputError(f"column {FID!r} is reserved by the PostGIS backend; rename it")
        types = [_pg_type(frame[name].dtype) for name in attributes]
        definitions = [sql.SQL("{} bigint NOT NULL").format(sql.Identifier(FID))]
        definitions += [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                        for name, kind in zip(attributes, types)]
        definitions.append(sql.SQL("{} geometry(Geometry, {})").format(sql.Identifier(geometry), sql.Literal(srid)))
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in [FID, *attributes, geometry])
        values = [("bigint", np.arange(1, len(frame) + 1))]
        values += [(kind, _copy_values(frame[name], kind)) for name, kind in zip(attributes, types)]
        values.append(("bytes", geometry_wkb(frame) if wkb is None else wkb))
        with self._transaction() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))  # a killed publication's leftover
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, sql.SQL(", ").join(definitions)))
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(ident, columns)) as copy:
                for data in copy_data(values, len(frame)):
                    copy.write(data)
            cur.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(ident, sql.Identifier(FID)))
            cur.execute(sql.SQL("CREATE INDEX {} ON {} USING GIST ({})").format(
                sql.Identifier(f"{table}_geom_idx"[:63]), ident, sql.Identifier(geometry)))
        with self._cursor() as cur:
            cur.execute(sql.SQL("ANALYZE {}").format(ident))
        return storage

    # -- what a desktop GIS sees (see gis.backends.pg_names) ---------------------------------------
    def _switch_name(self, cur, presentation, storage: str | None) -> None:
        table = storage.removeprefix("table:") if storage and storage.startswith("table:") else None
        pg_names.switch(cur, presentation, DATA_SCHEMA, table)

    def check_name(self, layer_id: str) -> None:
        with self._cursor() as cur:
            pg_names.check_name(cur, layer_id)

    def vector_summary(self, version: Version, columns: tuple[str, ...]) -> tuple[str | None, dict]:
        with self._cursor() as cur:
            return pg_names.summary(cur, DATA_SCHEMA, version.storage.removeprefix("table:"), columns)

    def given_style(self, layer_id: str):
        with self._cursor() as cur:
            return pg_names.given_style(cur, layer_id)

    def open_in_qgis(self, layer) -> str:
        from psycopg.conninfo import conninfo_to_dict

        return pg_names.open_in_qgis(conninfo_to_dict(self.dsn), layer.id)

    def _drop(self, table: str) -> bool:
        """Drop a data table unless a reader holds it (then it stays for the next gc)."""
        import psycopg
        from psycopg import sql

        try:
            with self._transaction() as cur:
                cur.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(DATA_SCHEMA, table)))
        except psycopg.errors.LockNotAvailable:
            log.info("table %s.%s is being read; left for gc", DATA_SCHEMA, table)
            return False
        return True


# -- features <-> tables ------------------------------------------------------------------------------
def _srid(frame) -> int:
    if frame.crs is None:
        return 0
    epsg = frame.crs.to_epsg()
    if epsg is None:
        raise InputError(f"the PostGIS backend stores CRS by EPSG code; {frame.crs.name} has none")
    return int(epsg)


def _pg_type(dtype) -> str:
    name = str(dtype)
    if name in _PG_TYPES:
        return _PG_TYPES[name]
    if name.startswith("datetime64"):
        return "timestamptz" if "," in name or "UTC" in name else "timestamp"
    return "text"


def _copy_values(series, kind: str):
    """A column's values for :func:`~gis.backends.pg_copy.copy_data`."""
    if kind in FIXED:
        numpy_type = _NUMPY_TYPES[kind]
        if isinstance(series.dtype, np.dtype):  # numpy's types miss no value (a float NaN goes as NaN)
            return series.to_numpy(dtype=numpy_type)
        return np.ma.MaskedArray(series.to_numpy(dtype=numpy_type, na_value=0), mask=series.isna().to_numpy())
    if kind in TIMESTAMPS:
        if kind == "timestamptz":
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series.to_numpy("datetime64[us]")
    values = series.to_numpy(dtype=object, na_value=None)
    return [value if value is None or isinstance(value, str) else str(value) for value in values]


def _data_columns(cur, table: str) -> list[tuple[str, str]]:
    cur.execute("SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (f'{DATA_SCHEMA}."{table}"',))
    return [(name, kind) for name, kind in cur.fetchall() if name != FID]


def _read_frame(cur, ident, columns: list[tuple[str, str]], version: Version, bbox):
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely
    from psycopg import sql

    geometry = next((name for name, kind in columns if kind == "geometry"), None)
    fields = [sql.SQL("ST_AsBinary({})").format(sql.Identifier(name)) if kind == "geometry"
              else sql.Identifier(name) for name, kind in columns]
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(fields), ident)
    params: tuple = ()
    if bbox is not None and geometry is not None:
        query += sql.SQL(" WHERE {} && ST_MakeEnvelope(%s, %s, %s, %s, {})").format(
            sql.Identifier(geometry), sql.Literal(_srid_of(version)))
        params = tuple(float(v) for v in bbox)
    query += sql.SQL(" ORDER BY {}").format(sql.Identifier(FID))
    cur.execute(query, params)
    rows = cur.fetchall()
    data: dict[str, Any] = {}
    wkbs: list = []
    for index, (name, kind) in enumerate(columns):
        values = [row[index] for row in rows]
        if kind == "geometry":
            wkbs = [None if v is None else bytes(v) for v in values]
            continue
        dtype = _NUMPY_TYPES.get(kind)
        if dtype is not None and None not in values:
            data[name] = np.array(values, dtype=dtype)
        elif dtype is not None:  # NULLs: pandas' nullable type
            data[name] = pd.array(values, dtype=_NULLABLE[dtype])
        elif kind == "text":
            data[name] = pd.Series(values, dtype="str") if values else pd.Series([], dtype="str")
        else:
            data[name] = values
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    geoms = shapely.from_wkb(np.array(wkbs, dtype=object)) if wkbs else np.array([], dtype=object)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index, name=geometry or "geometry"),
                            crs=version.crs)


def _srid_of(version: Version) -> int:
    if not version.crs:
        return 0
    from pyproj import CRS

    return int(CRS.from_user_input(version.crs).to_epsg() or 0)
