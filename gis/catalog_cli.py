"""``lutece publish``, ``lutece layers ...`` and ``lutece gc``: the city GIS from the command line.

The store comes from the configuration (``store`` of ``lutece.yml``). Data
(tables, JSON) goes to stdout; errors are :class:`~gis.errors.LuteceError`
turned into one ``Error:`` line by the root group.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from gis.catalog.licences import ACCESS_LEVELS, LICENCES
from gis.catalog.model import KINDS
from gis.catalog.public import public_layer, public_version
from gis.display import cell, to_json
from gis.env import Env

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
internal_option = click.option("--internal", is_flag=True,
                               help="The full record (publisher, absolute paths): operator only, never export.")


def _catalog(env: Env, create: bool = False):
    from gis.catalog.service import Catalog

    return Catalog.from_config(env.config, create=create)


def _echo_json(data) -> None:
    click.echo(to_json(data, indent=2))


def _table(title: str, columns: list[str], rows: list[list[object]]) -> None:
    """A Rich table whose every value is shown literally (catalog text is never markup)."""
    table = Table(title=cell(title))
    for column in columns:
        table.add_column(cell(column))
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    Console().print(table)


@click.command()
@click.argument("product", type=click.Path(exists=True, path_type=Path))
@click.option("--layer", "layer_id", required=True, help="Layer id (a slug), created by its first publication.")
@click.option("--source-layer", help="The GeoPackage layer to publish when it holds several.")
@click.option("--title", help="Title, in French.")
@click.option("--title-en", help="Title, in English.")
@click.option("--description", help="Description, in French.")
@click.option("--description-en", help="Description, in English.")
@click.option("--keyword", "keywords", multiple=True, help="A keyword (repeatable).")
@click.option("--theme", help="Theme (e.g. buildings, elevation).")
@click.option("--producer", help="The city service that produces the layer.")
@click.option("--update-frequency", help="e.g. annual, monthly, irregular.")
@click.option("--licence", type=click.Choice(list(LICENCES)), help="Required for a new layer.")
@click.option("--access", type=click.Choice(ACCESS_LEVELS), help="Required for a new layer.")
@click.option("--kind", type=click.Choice(KINDS),
              help="Only to tell point-cloud from mesh 3D Tiles, or for a CityJSON 2.0 file not named *.city.json.")
@click.option("--note", default="", help="Why this version.")
@click.option("--publisher", help="Who publishes (default user@host).")
@click.option("--replaces", "expected", type=int, help="Fail unless the current version is this one.")
@click.option("--on-invalid", type=click.Choice(["raise", "fix", "skip"]), default="raise", show_default=True)
@click.option("--allow-empty", is_flag=True, help="Accept a layer without features.")
@click.option("--force", is_flag=True, help="Publish a new version even if the current one holds the same data.")
@click.option("--style", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A QGIS style (.qml) replacing the layer's default style.")
@click.pass_obj
def publish(env: Env, product: Path, layer_id: str, source_layer, title, title_en, description, description_en,
            keywords, theme, producer, update_frequency, licence, access, kind, note, publisher, expected,
            on_invalid, allow_empty, force, style) -> None:
    """Check PRODUCT (GeoPackage, COG, CityJSON 2.0 file, 3D Tiles folder) and publish it as a new version of a layer."""
    metadata = {"title": title, "title_en": title_en, "description": description, "description_en": description_en,
                "keywords": keywords or None, "theme": theme, "producer": producer,
                "update_frequency": update_frequency}
    with _catalog(env, create=True) as catalog:
        result = catalog.publish(product, layer_id, licence=licence, access=access, note=note, publisher=publisher,
                                 source_layer=source_layer, kind=kind, on_invalid=on_invalid,
                                 allow_empty=allow_empty, expected_version="current" if expected is None else expected,
                                 force=force, style=style, **metadata)
    version = result.version
    if result.event is None:
        click.echo(f"{layer_id}: unchanged, version {version.number} already holds this data "
                   f"(sha256 {version.checksum[:12]}); --force publishes it again as a new version")
        return
    count = f", {version.features} features" if version.features is not None else ""
    click.echo(f"{layer_id}: version {version.number} published ({result.layer.access}, {result.layer.licence}"
               f"{count}, sha256 {version.checksum[:12]}, {result.seconds:.2f} s, change {result.event.seq})")


@click.group()
def layers() -> None:
    """List, inspect, roll back, withdraw and reclassify the city GIS's layers."""


@layers.command("list")
@json_option
@click.pass_obj
def layers_list(env: Env, as_json: bool) -> None:
    """Every layer with its kind, current version, access level and licence."""
    with _catalog(env) as catalog:
        found = catalog.layers()
    if as_json:
        _echo_json([public_layer(layer) for layer in found])
        return
    _table("layers", ["id", "kind", "version", "access", "licence", "title"],
           [[l.id, l.kind, l.current_version if l.current_version else "withdrawn", l.access, l.licence, l.title]
            for l in found])


@layers.command("show")
@click.argument("layer_id")
@internal_option
@click.pass_obj
def layers_show(env: Env, layer_id: str, internal: bool) -> None:
    """A layer's public record (JSON): metadata, licence, the current version and its public lineage."""
    with _catalog(env) as catalog:
        layer = catalog.layer(layer_id)
        current = catalog.version(layer_id) if layer.current_version is not None else None
    if internal:
        data = {**dataclasses.asdict(layer), "licence_uri": LICENCES[layer.licence].uri,
                "version": dataclasses.asdict(current) if current is not None else None}
    else:
        data = {**public_layer(layer), "version": public_version(current) if current is not None else None}
    _echo_json(data)


@layers.command("history")
@click.argument("layer_id")
@json_option
@internal_option
@click.pass_obj
def layers_history(env: Env, layer_id: str, as_json: bool, internal: bool) -> None:
    """The retained versions of a layer, oldest first (* marks the current one).

    The table is the operator's (it names the publishers); --json prints the versions' public records.
    """
    with _catalog(env) as catalog:
        layer = catalog.layer(layer_id)
        versions = catalog.history(layer_id)
    if as_json:
        _echo_json([dataclasses.asdict(v) if internal else public_version(v) for v in versions])
        return
    _table(f"{layer_id} history", ["", "version", "published", "publisher", "features", "sha256", "note"],
           [["*" if v.number == layer.current_version else "", v.number, v.published, v.publisher, v.features,
             v.checksum[:12], v.note] for v in versions])


@layers.command("rollback")
@click.argument("layer_id")
@click.option("--to", "to", type=int, help="Version to make current (default: the one before the current).")
@click.pass_obj
def layers_rollback(env: Env, layer_id: str, to: int | None) -> None:
    """Make an earlier retained version current again."""
    with _catalog(env) as catalog:
        event = catalog.rollback(layer_id, to)
    click.echo(f"{layer_id}: version {event.version} is current again (was {event.previous_version})")


@layers.command("withdraw")
@click.argument("layer_id")
@click.pass_obj
def layers_withdraw(env: Env, layer_id: str) -> None:
    """Stop serving a layer; its versions stay for rollback."""
    with _catalog(env) as catalog:
        event = catalog.withdraw(layer_id)
    click.echo(f"{layer_id}: withdrawn (was version {event.previous_version})")


@layers.command("reclassify")
@click.argument("layer_id")
@click.option("--access", type=click.Choice(ACCESS_LEVELS), required=True)
@click.option("--licence", type=click.Choice(list(LICENCES)))
@click.pass_obj
def layers_reclassify(env: Env, layer_id: str, access: str, licence: str | None) -> None:
    """Change a layer's access level (and licence)."""
    with _catalog(env) as catalog:
        event = catalog.reclassify(layer_id, access, licence)
    click.echo(f"{layer_id}: {event.access_before} -> {event.access_after} ({event.licence})")


@layers.command("open-in-qgis")
@click.argument("layer_id")
@click.pass_obj
def layers_open_in_qgis(env: Env, layer_id: str) -> None:
    """What to paste into QGIS to open the layer's stable name, which always shows its current version.

    GeoPackage: PATH|layername=ID (Layer > Add Layer > Add Vector Layer, or drag the file);
    PostGIS: QGIS's data source, then GDAL's; rasters and 3D Tiles: the path under current/.
    """
    with _catalog(env) as catalog:
        click.echo(catalog.open_in_qgis(layer_id))


@layers.command("changes")
@click.option("--after", type=int, default=0, show_default=True, help="Sequence number already seen.")
@click.option("--limit", type=int)
@click.pass_obj
def layers_changes(env: Env, after: int, limit: int | None) -> None:
    """The change feed after a sequence number, one JSON object per line."""
    with _catalog(env) as catalog:
        for event in catalog.events(after, limit):
            click.echo(to_json(event.to_dict()))


@click.command()
@click.pass_obj
def gc(env: Env) -> None:
    """Remove tables and files no version references, and leftovers of killed publications."""
    with _catalog(env) as catalog:
        report = catalog.gc()
    click.echo(f"removed {len(report.tables)} tables, {len(report.files)} folders, "
               f"{len(report.pending)} dead publications")
