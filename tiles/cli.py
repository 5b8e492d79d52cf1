"""``lutece tiles ...``: 3D Tiles written directly from files."""

from __future__ import annotations

from pathlib import Path

import click

from gis.plugins import EntryPointGroup
from tiles.products import PRODUCTS

# Commands of other packages under ``lutece tiles`` (``interior``: building plans, read by pipelines/).
PLUGIN_GROUP = "lutece.tiles.commands"


@click.group(cls=EntryPointGroup, entry_point_group=PLUGIN_GROUP)
def tiles() -> None:
    """Write 3D Tiles (point clouds, building interiors) for web viewers such as CesiumJS."""


@tiles.command("pointcloud")
@click.argument("inputs", nargs=-1, required=True)
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--product", type=click.Choice(PRODUCTS), default="full", show_default=True,
              help="full: all but noise; streets: the street corridors; terrain: ground and water, thinned.")
@click.option("--spec", type=click.Choice(["1.1", "1.0"]), default="1.1", show_default=True,
              help="3D Tiles version: 1.1 writes glTF (.glb), 1.0 pnts for older clients.")
@click.option("--streets", help="Vector file of street centrelines (for --product streets).")
@click.option("--streets-layer", default="streets", show_default=True)
@click.option("--width-field", default="width_m", show_default=True, help="The streets' width in metres.")
@click.option("--margin", type=float, default=2.0, show_default=True, help="Metres added to each side of a corridor.")
@click.option("--spacing", type=float, default=1.0, show_default=True, help="Terrain: one point per cell of this size.")
@click.option("--max-points", type=int, default=50_000, show_default=True, help="Most points in one tile.")
@click.option("--heights", type=click.Choice(["orthometric", "ellipsoidal"]), default="orthometric",
              show_default=True, help="Input heights: orthometric get the geoid added; ellipsoidal are kept.")
@click.option("--geoid", help="Geoid grid PROJ can read (default: EGM96, egm96_15.gtx from proj-data).")
@click.option("--crs-in", help="CRS of files whose header has none (e.g. EPSG:2154); refused over another CRS.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def pointcloud(inputs: tuple[str, ...], out: Path, product: str, spec: str, streets: str | None, streets_layer: str,
               width_field: str, margin: float, spacing: float, max_points: int, heights: str, geoid: str | None,
               crs_in: str | None, overwrite: bool) -> None:
    """Convert lidar INPUT files (LAS/LAZ files, folders or globs) into one 3D Tiles folder OUT."""
    from tiles.job import TilerSettings, convert
    from tiles.products import ProductOptions

    settings = TilerSettings(
        product=ProductOptions(product=product, streets=streets, streets_layer=streets_layer, width_field=width_field,
                               margin=margin, spacing=spacing),
        spec=spec, max_points=max_points, heights=heights, geoid=geoid, crs_in=crs_in)
    result = convert(list(inputs), out, settings, overwrite=overwrite,
                     tell=lambda detail: click.echo(detail, err=True))
    click.echo(f"{result.output}/tileset.json: {result.points:,} points in {result.tiles} lidar tile(s)"
               + (f", {len(result.skipped)} without points of this product" if result.skipped else ""))
