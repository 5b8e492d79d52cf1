"""``lutece sample``: generate and describe the synthetic sample district."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from gis.display import cell, printable
from gis.errors import InputError

STEP_LABELS = {"scene": "Laying out streets and blocks", "lidar": "Scanning lidar cells",
               "variants": "Writing lidar variants", "vectors": "Writing vectors and truth",
               "plans": "Writing the town hall's plans"}


@click.group()
def sample() -> None:
    """The synthetic Paris-like sample district (lidar, vectors, plans, ground truth)."""


@sample.command("generate")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", type=float, default=400.0, show_default=True, help="Edge of the square district, metres.")
@click.option("--density", type=float, default=10.0, show_default=True, help="Lidar pulses per m2.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@click.option("--point-format", type=click.Choice(["6", "7", "8"]), default="6", show_default=True,
              help="LAS 1.4 point format (7 and 8 carry RGB).")
@click.option("--variant-size", type=float, default=150.0, show_default=True,
              help="Edge of the central crop the unclassified and no-CRS lidar variants cover; 0 for all.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists (the old one stays until the new one is complete).")
@click.pass_obj
def generate(env, out: Path, size: float, density: float, seed: int, point_format: str, variant_size: float,
             overwrite: bool) -> None:
    """Generate a district into the folder OUT and print what it contains."""
    from pipelines.synthetic.generate import DistrictSpec, check_request, generate_district  # geopandas, ifcopenshell

    spec = DistrictSpec(size=size, density=density, seed=seed, point_format=int(point_format), variant_size=variant_size)
    check_request(out, spec, overwrite)  # before the progress bars, so an error stays one line
    quiet = env is not None and env.quiet
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=quiet) as bars:
        tasks: dict[str, int] = {}

        def report(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(STEP_LABELS.get(step, step), total=total)
            bars.update(tasks[step], completed=done, total=total)

        manifest = generate_district(out, spec, overwrite=overwrite, progress=report)
    print_summary(out, manifest)


@sample.command("ifc")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pavilions", type=click.IntRange(min=1), default=10, show_default=True,
              help="Pavilions of the town hall in a row, one building (102 spaces on 5 storeys each).")
@click.option("--origin", type=(float, float), default=(651180.0, 6861150.0), show_default=True,
              help="Lambert-93 x y of the first pavilion's south-west corner.")
@click.option("--ground-z", type=float, default=36.0, show_default=True, help="NGF-IGN69 height of the ground floor.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def ifc(out: Path, pavilions: int, origin: tuple[float, float], ground_z: float, overwrite: bool) -> None:
    """Write a larger IFC4 building into the file OUT: the sample town hall's pavilions in a row (benchmarks)."""
    from gis.errors import OutputExistsError
    from pipelines.synthetic.ifc import write_ifc  # ifcopenshell
    from pipelines.synthetic.pavilions import build_complex
    from pipelines.synthetic.townhall import TownHallSite

    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; give --overwrite to replace it")
    if not out.parent.is_dir():
        raise InputError(f"{out}: the folder {out.parent} does not exist; create it first")
    model = build_complex(pavilions)
    partial = out.with_name(out.name + ".partial")
    write_ifc(TownHallSite(origin, 0.0, ground_z), partial, model)
    partial.replace(out)  # whole or not at all
    click.echo(f"{out}: {len(model.levels)} storeys, {len(model.rooms):,} spaces, {len(model.walls):,} walls, "
               f"{len(model.doors):,} doors, {len(model.windows):,} windows")


@sample.command("info")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def info(folder: Path) -> None:
    """Describe the district in FOLDER from its manifest."""
    path = folder / "manifest.json"
    if not path.is_file():
        raise InputError(f"{folder}: no manifest.json, not a generated district; run 'lutece sample generate {folder}'")
    print_summary(folder, json.loads(path.read_text(encoding="utf-8")))


def print_summary(folder: Path, manifest: dict) -> None:
    """A table of the files, the lidar classes and the scene counts, on stdout."""
    console = Console()
    lidar, scene = manifest["lidar"], manifest["scene"]
    parameters = manifest["parameters"]
    # A folder's name and a manifest's text are shown literally, never read as Rich markup.
    console.print(Text.assemble((printable(folder), "bold"),
                                f": {parameters['size']:g} m x {parameters['size']:g} m district, seed "
                                f"{parameters['seed']}, {lidar['points']:,} lidar points "
                                f"({lidar['points_per_m2']} per m2)"))
    files = Table("file", "size", "content", title="Files")
    for name, facts in manifest["files"].items():
        files.add_row(cell(name), _human(facts["bytes"]), cell(facts["description"]))
    console.print(files)
    classes = Table("ASPRS class", "points", "share", title="Lidar classes")
    for name, count in lidar["classes"].items():
        classes.add_row(cell(name), f"{count:,}", f"{100 * count / lidar['points']:.1f} %")
    console.print(classes)
    console.print(cell("Scene: " + ", ".join(f"{n} {k}" for k, n in scene.items())))


def _human(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"
