"""The ``lutece`` command line: the root group and the core's own commands.

Subcommand groups of the other packages (``sample``, later ``pipeline``,
``tiles``, ``serve``) are found through the ``lutece.commands`` entry-point
group declared in pyproject.toml, so that ``gis`` imports nothing of ours.

Every :class:`~gis.errors.LuteceError` becomes one line ``Error: ...`` on
stderr with exit code 1; click's usage errors exit 2; no user error shows a
traceback (``-vv`` logs it at debug level).
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from gis import __version__
from gis.config import find_config_file, load_config
from gis.display import cell, one_line
from gis.doctor import diagnose, raise_for_missing
from gis.env import Env
from gis.errors import ConfigError, LuteceError
from gis.plugins import EntryPointGroup

log = logging.getLogger(__name__)

PLUGIN_GROUP = "lutece.commands"


class LuteceGroup(EntryPointGroup):
    """Root group: adds the plugin subcommands and turns LuteceError into one line."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, entry_point_group=PLUGIN_GROUP, **kwargs)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LuteceError as exc:
            log.debug("user error", exc_info=True)
            raise click.ClickException(one_line(exc)) from None  # one line, whatever text it quotes


@click.group(cls=LuteceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="lutece")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, errors only.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar="LUTECE_CONFIG", help="Configuration file (default: ./lutece.yml if present).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, config_path: Path | None) -> None:
    """Lutèce: lidar and building plans to 2D layers and 3D Tiles for the city GIS."""
    env = Env(verbosity=-1 if quiet else verbose, config_path=config_path)
    env.configure_logging()
    ctx.obj = env


@cli.command()
def doctor() -> None:
    """Report the versions of the libraries Lutèce needs; exit 1 if one is missing."""
    results = diagnose()
    table = Table(title="lutece doctor", show_lines=False)
    table.add_column("component")
    table.add_column("status")
    table.add_column("version / problem")
    for result in results:
        status = "[green]ok[/green]" if result.ok else "[red]missing[/red]"
        detail = result.detail if result.ok else f"{result.detail} -> {result.fix}"
        table.add_row(cell(result.name), status, cell(detail))
    Console().print(table)
    raise_for_missing(results)


@cli.group()
def config() -> None:
    """Check the configuration file (lutece.yml)."""


@config.command("validate")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def config_validate(env: Env, file: Path | None) -> None:
    """Validate FILE (default: --config, $LUTECE_CONFIG or ./lutece.yml) against the schema."""
    path = file or find_config_file(env.config_path)
    if path is None:
        raise ConfigError("no configuration file given and no lutece.yml in the current folder; pass FILE")
    loaded = load_config(path)
    click.echo(f"{loaded.source}: valid (crs {loaded.crs}, store {loaded.store['backend']})")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="lutece")


def _add_catalog_commands() -> None:
    from gis.catalog_cli import gc, layers, publish

    for command in (publish, layers, gc):
        cli.add_command(command)


_add_catalog_commands()
