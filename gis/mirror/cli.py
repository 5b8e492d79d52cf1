"""``lutece mirror``: sync an open-data mirror from a Lutèce server, once or following its change feed."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from gis.display import one_line
from gis.errors import LuteceError
from gis.mirror.client import DOWNLOADS_AT_ONCE
from gis.mirror.sync import sync, watch


@click.command()
@click.option("--source", required=True, metavar="URL", help="The server's root URL (https://gis.city.fr).")
@click.option("--target", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The mirror's folder (created if needed).")
@click.option("--watch", "follow", is_flag=True, help="Keep following the change feed.")
@click.option("--interval", type=click.FloatRange(min=0.2), default=5.0, show_default=True,
              help="Seconds between two looks at the change feed (with --watch).")
@click.option("--grace-days", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep a withdrawn dataset this many days under archive/ (never listed as current).")
@click.option("--downloads", type=click.IntRange(min=1, max=16), default=DOWNLOADS_AT_ONCE, show_default=True,
              help="Files downloaded at once (a polite harvester keeps this small).")
def mirror(source: str, target: Path, follow: bool, interval: float, grace_days: int, downloads: int) -> None:
    """Mirror the open layers of a Lutèce server into TARGET: files, DCAT metadata, licence notices, index."""
    if not follow:
        try:
            click.echo(sync(source, target, grace_days, downloads=downloads).line())
        except LuteceError as error:  # one line, also when the command runs outside the root group
            raise click.ClickException(one_line(error)) from None
        return
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    click.echo(f"mirror: following {source} into {target} every {interval:g} s (Ctrl-C stops)", err=True)
    try:
        watch(source, target, interval, grace_days, report=lambda line: click.echo(line, err=True),
              stop=lambda: bool(stopping), downloads=downloads)
    except KeyboardInterrupt:
        pass
