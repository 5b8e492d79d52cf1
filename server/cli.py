"""``lutece serve`` and ``lutece keys ...``: the OGC API server and the partners' API keys.

Registered through the ``lutece.commands`` entry points of pyproject.toml.
``serve`` runs gunicorn with N worker processes, each building its own app
with :func:`server.app.create_app` after the fork (so no connection, thread
or SQLite handle crosses a fork); ``--dev`` runs Werkzeug's reloading
server in one process instead.
"""

from __future__ import annotations

import logging

import click

from gis.env import Env


def _catalog(env: Env):
    from gis.catalog.service import Catalog

    return Catalog.from_config(env.config, create=False)


# -- lutece serve ------------------------------------------------------------------------------------
@click.command()
@click.option("--host", default=None, help="Address to listen on (default: server.host or 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: server.port or 5000).")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="gunicorn worker processes (default 2).")
@click.option("--url", default=None, help="Public URL of the server, for links (default http://HOST:PORT).")
@click.option("--dev", is_flag=True, help="One process, reloaded when the code changes (Werkzeug).")
@click.pass_obj
def serve(env: Env, host, port, workers, url, dev) -> None:
    """Serve the city GIS's layers through OGC API (Features, Coverages, Tiles, Records)."""
    from server.app import server_settings

    config = env.config
    settings = server_settings(config, {"host": host, "port": port, "workers": workers, "url": url})
    _catalog(env).close()  # fail now, in one line, if the store is missing or unreachable
    _check_port(settings["host"], int(settings["port"]))
    logging.getLogger("lutece.access").setLevel(logging.INFO)
    if dev:
        _serve_dev(config, settings)
    else:
        from server.wsgi import GunicornServer

        GunicornServer(config, settings).run()


def _check_port(host: str, port: int) -> None:
    """Fail in one line when the address cannot be listened on (gunicorn would retry, then log a traceback)."""
    import socket

    from gis.errors import InputError

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port "
                         f"or --host, or stop what uses it") from None


def _serve_dev(config, settings: dict) -> None:
    import signal

    from werkzeug.serving import run_simple

    from server.app import create_app

    def stop(*_args) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    app = create_app(config, settings)
    try:
        run_simple(settings["host"], int(settings["port"]), app, use_reloader=True, threaded=True)
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["lutece"].close()


# -- lutece keys ---------------------------------------------------------------------------------------
@click.group()
def keys() -> None:
    """API keys of partners: each opens the shared layers it lists (stored hashed)."""


@keys.command("create")
@click.option("--partner", required=True, help="Who the key is for.")
@click.option("--layers", required=True, help="Comma-separated ids of the shared layers the key opens.")
@click.option("--expires", default=None, help="Last day of validity, YYYY-MM-DD (or an ISO 8601 time).")
@click.pass_obj
def keys_create(env: Env, partner: str, layers: str, expires: str | None) -> None:
    """Create a key; it is printed once, on stdout, and only its hash is kept."""
    from gis.backends.keys import KeyStore

    with _catalog(env) as catalog:
        key, record = KeyStore(catalog.backend).create(partner, layers.split(","), expires)
    click.echo(key)
    click.echo(f"key {record.key_id} for {record.partner}: {', '.join(record.layers)}"
               + (f", until {record.expires}" if record.expires else "")
               + "; keep it now, it cannot be shown again", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def keys_list(env: Env, as_json: bool) -> None:
    """List the keys (id, partner, layers, dates; never the keys themselves)."""
    from rich.console import Console
    from rich.table import Table

    from gis.backends.keys import KeyStore
    from gis.display import cell, to_json

    with _catalog(env) as catalog:
        records = KeyStore(catalog.backend).list()
    if as_json:
        click.echo(to_json([record.to_dict() for record in records], indent=2))
        return
    table = Table(title="API keys")
    for column in ("id", "partner", "layers", "created", "expires", "status"):
        table.add_column(column)
    for record in records:  # a partner's name is shown literally, never read as Rich markup
        status = "revoked" if record.revoked else ("active" if record.active() else "expired")
        table.add_row(*map(cell, (record.key_id, record.partner, ", ".join(record.layers), record.created[:19],
                                  (record.expires or "")[:19], status)))
    Console().print(table)


@keys.command("revoke")
@click.argument("key_id")
@click.pass_obj
def keys_revoke(env: Env, key_id: str) -> None:
    """Revoke the key KEY_ID (see 'lutece keys list'); every server stops accepting it within seconds."""
    from gis.backends.keys import KeyStore

    with _catalog(env) as catalog:
        record = KeyStore(catalog.backend).revoke(key_id)
    click.echo(f"key {record.key_id} of {record.partner} revoked at {record.revoked}")


if __name__ == "__main__":  # `python -m server.cli ...`: the root group with these commands, before install
    from gis.cli import cli

    cli.add_command(serve)
    cli.add_command(keys)
    cli(prog_name="lutece")
