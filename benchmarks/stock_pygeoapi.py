"""Vanilla pygeoapi 0.21's Flask app for bench_server.py, on an SQLite that may load SpatiaLite.

pygeoapi's SQLiteGPKG provider loads the ``mod_spatialite`` extension through
Python's ``sqlite3``; a Python built without loadable extensions (as pyenv's
default build is) refuses it, so the stock server gets ``pysqlite3`` (the
same DB-API module, with its own SQLite that allows them) under the name
``sqlite3``. pygeoapi's code is not changed.

Run: ``gunicorn stock_pygeoapi:APP`` from benchmarks/, with PYGEOAPI_CONFIG and PYGEOAPI_OPENAPI set.
"""

import sys

try:
    import pysqlite3
except ImportError:  # this Python's own sqlite3 may allow extensions
    pass
else:
    sys.modules["sqlite3"] = pysqlite3



def openapi_document(config: str) -> str:
    """pygeoapi's OpenAPI document (YAML) of a configuration, as ``pygeoapi openapi generate`` writes it."""
    from pygeoapi.openapi import generate_openapi_document

    with open(config, encoding="utf-8") as stream:
        return generate_openapi_document(stream, "yaml")


def __getattr__(name: str):
    if name == "APP":  # pygeoapi's flask_app reads its configuration when imported: only when gunicorn asks
        from pygeoapi.flask_app import APP

        return APP
    raise AttributeError(name)
