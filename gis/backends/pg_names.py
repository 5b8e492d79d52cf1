"""Stable layer names on PostGIS: one view per vector layer in the schema ``city``, on its current version's table.

``city."buildings"`` is ``SELECT * FROM lutece_data."buildings__v3"``: the
planner sees through it, so a bbox query uses the version table's GIST
index. The view is dropped and created again inside the transaction that
makes a version current (DDL is transactional in PostgreSQL), with the
layer's title, abstract and metadata as its ``COMMENT``, and the layer's
style as a row of ``public.layer_styles`` (the table QGIS reads). Dropping a
view waits for the readers that hold it (they finish on the old version);
``lock_timeout`` bounds that wait.
"""

from __future__ import annotations

from gis.errors import InputError, PublishConflict
from gis.qgis.presentation import DEFAULT_STYLE, Presentation, Style

NAMES_SCHEMA = "city"
SWITCH_LOCK_TIMEOUT = "30s"

# QGIS's own definition of the table (its PostgreSQL provider creates the same when it saves a style).
STYLES = """
CREATE TABLE IF NOT EXISTS public.layer_styles (
    id serial PRIMARY KEY,
    f_table_catalog varchar, f_table_schema varchar, f_table_name varchar, f_geometry_column varchar,
    stylename text, styleqml xml, stylesld xml, useasdefault boolean, description text,
    owner varchar(63) DEFAULT CURRENT_USER, ui xml, update_time timestamp DEFAULT CURRENT_TIMESTAMP, type varchar)
"""


def prepare(cur) -> None:
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {NAMES_SCHEMA}")
    cur.execute("SELECT to_regclass('public.layer_styles') IS NOT NULL")
    if not cur.fetchone()[0]:
        cur.execute(STYLES)


def check_name(cur, name: str) -> None:
    """Refuse a stable name that is a table (or anything but a view) in the schema ``city``."""
    cur.execute("SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s", (NAMES_SCHEMA, name))
    row = cur.fetchone()
    if row is not None and row[0] != "v":
        raise InputError(f"layer id {name!r} is the name of a table already in the schema {NAMES_SCHEMA} of the "
                         f"city database (not a Lutèce layer view); choose another layer id")


def switch(cur, presentation: Presentation, data_schema: str, table: str | None) -> None:
    """Point ``city."<id>"`` at ``data_schema.table`` (None: drop it), with its comment and style."""
    import psycopg
    from psycopg import sql

    prepare(cur)
    name = presentation.layer_id
    check_name(cur, name)
    view = sql.Identifier(NAMES_SCHEMA, name)
    cur.execute(f"SET LOCAL lock_timeout = '{SWITCH_LOCK_TIMEOUT}'")
    try:
        cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(view))
    except psycopg.errors.LockNotAvailable:
        raise PublishConflict(f"layer {name}: readers held {NAMES_SCHEMA}.{name} for {SWITCH_LOCK_TIMEOUT}; "
                              f"nothing was changed, publish again when they are done") from None
    geometry = None
    if table is not None:
        cur.execute(sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(view, sql.Identifier(data_schema, table)))
        cur.execute(sql.SQL("COMMENT ON VIEW {} IS {}").format(view, sql.Literal(presentation.comment())))
        cur.execute("SELECT f_geometry_column FROM geometry_columns WHERE f_table_schema=%s AND f_table_name=%s",
                    (data_schema, table))
        row = cur.fetchone()
        geometry = row[0] if row else None
    if presentation.style is not None and (table is not None or presentation.kind != "vector"):
        write_style(cur, name, geometry, presentation)


def given_style(cur, name: str) -> Style | None:
    """The style given for the layer (not the default), if any."""
    cur.execute("SELECT to_regclass('public.layer_styles') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    cur.execute("SELECT styleqml::text, stylesld::text, description FROM public.layer_styles WHERE f_table_schema=%s "
                "AND f_table_name=%s AND stylename=%s AND description<>%s", (NAMES_SCHEMA, name, name, DEFAULT_STYLE))
    row = cur.fetchone()
    return Style(row[0], row[1], row[2]) if row else None


def write_style(cur, name: str, geometry: str | None, presentation: Presentation) -> None:
    """The layer's row of ``layer_styles``; a given style stays until another is given."""
    style = presentation.style
    where = "f_table_schema=%s AND f_table_name=%s AND stylename=%s"
    cur.execute(f"SELECT description FROM public.layer_styles WHERE {where}", (NAMES_SCHEMA, name, name))
    kept = cur.fetchone()
    if style.is_default and kept is not None and kept[0] != style.note:
        cur.execute(f"UPDATE public.layer_styles SET f_geometry_column=%s WHERE {where}",
                    (geometry, NAMES_SCHEMA, name, name))
        return
    cur.execute(f"DELETE FROM public.layer_styles WHERE {where}", (NAMES_SCHEMA, name, name))
    cur.execute("INSERT INTO public.layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                "stylename, styleqml, stylesld, useasdefault, description) VALUES (current_database(), %s, %s, "
                "%s, %s, XMLPARSE(DOCUMENT %s), XMLPARSE(DOCUMENT %s), true, %s)",
                (NAMES_SCHEMA, name, geometry, name, style.qml, style.sld, style.note))  # type NULL: QGIS matches any


def summary(cur, data_schema: str, table: str, columns: tuple[str, ...]) -> tuple[str | None, dict]:
    """The table's geometry type name and the (min, max) of those of ``columns`` it has as numbers."""
    from psycopg import sql

    cur.execute("SELECT type FROM geometry_columns WHERE f_table_schema=%s AND f_table_name=%s", (data_schema, table))
    row = cur.fetchone()
    geometry_type = row[0] if row else None
    if geometry_type in (None, "GEOMETRY"):  # the column is untyped: the first feature's type tells
        cur.execute(sql.SQL("SELECT GeometryType(geometry) FROM {} LIMIT 1").format(sql.Identifier(data_schema, table)))
        first = cur.fetchone()
        geometry_type = first[0] if first else geometry_type
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema=%s AND table_name=%s "
                "AND data_type IN ('double precision', 'real', 'integer', 'bigint', 'smallint', 'numeric')",
                (data_schema, table))
    numeric = {name for (name,) in cur.fetchall()}
    ranges = {}
    for name in (name for name in columns if name in numeric):
        cur.execute(sql.SQL("SELECT min({0}), max({0}) FROM {1}").format(sql.Identifier(name),
                                                                         sql.Identifier(data_schema, table)))
        low, high = cur.fetchone()
        if low is not None:
            ranges[name] = (float(low), float(high))
    return geometry_type, ranges


def open_in_qgis(dsn_info: dict, name: str) -> str:
    """QGIS's PostgreSQL data source of the view (no password), then GDAL's, on two lines."""
    keys = " ".join(f"{key}='{dsn_info[key]}'" for key in ("dbname", "host", "port", "user") if dsn_info.get(key))
    return (f"{keys} key='lutece_fid' table=\"{NAMES_SCHEMA}\".\"{name}\" (geometry)\n"
            f"PG:\"{keys}\" {NAMES_SCHEMA}.{name}")
