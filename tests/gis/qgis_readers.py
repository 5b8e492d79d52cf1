"""Readers of a layer's stable name as a desktop GIS reads it: GDAL (GeoPackage; PostgreSQL driver) and psycopg."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

STABLE_SCHEMA = "city"


def needs_ogr2ogr() -> str:
    """GDAL's command line (Debian's gdal-bin, with the PostgreSQL driver pyogrio's wheel lacks)."""
    found = shutil.which("ogr2ogr")
    if found is None:
        message = "ogr2ogr not installed (Debian package gdal-bin); run 'bash .ci/system-deps.sh' as root"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def listed_names(catalog) -> set[str]:
    """The layers a desktop GIS lists: GDAL's list of the GeoPackage, or the views of the schema ``city``."""
    backend = catalog.backend
    if backend.name == "geopackage":
        import pyogrio

        return {str(name) for name, _type in pyogrio.list_layers(backend.gpkg)}
    import psycopg

    with psycopg.connect(backend.dsn) as con:
        return {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables "
                                              "WHERE table_schema=%s", (STABLE_SCHEMA,))}


def read_stable(catalog, name: str, tmp_path: Path, bbox=None):
    """The layer ``name`` read through GDAL: the GeoPackage's layer, or PostGIS's view by GDAL's PostgreSQL driver."""
    import pyogrio

    backend = catalog.backend
    if backend.name == "geopackage":
        return pyogrio.read_dataframe(backend.gpkg, layer=name, bbox=bbox)
    out = tmp_path / f"ogr-{name}-{len(list(tmp_path.glob('ogr-*')))}.gpkg"
    command = [needs_ogr2ogr(), "-f", "GPKG", str(out), f"PG:{backend.dsn}", f"{STABLE_SCHEMA}.{name}", "-nln", "read"]
    if bbox is not None:
        command += ["-spat", *map(str, bbox)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return pyogrio.read_dataframe(out, layer="read")


def read_psycopg(catalog, name: str) -> tuple[list[str], int]:
    """(building ids in order, the geometry column's SRID) of the view, by a plain SQL client."""
    import psycopg

    with psycopg.connect(catalog.backend.dsn) as con:
        ids = [row[0] for row in con.execute(f'SELECT bid FROM {STABLE_SCHEMA}."{name}" ORDER BY bid')]
        (srid,) = con.execute(f'SELECT Find_SRID(%s, %s, %s)', (STABLE_SCHEMA, name, "geometry")).fetchone()
    return ids, srid
