"""``lutece pipeline``: validate and run pipelines, and list the ones shipped with Lutèce."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gis.errors import InputError
from pipelines.spec import load_pipeline, parse_overrides

PHASES = {"decode": "Decoding lidar files", "tiles": "Processing tiles", "products": "Writing products",
          "plans": "Reading building plans"}


def shipped_pipelines() -> dict[str, Path]:
    """The ready pipelines in pipelines/definitions, by name."""
    folder = files("pipelines").joinpath("definitions")
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yml")}


def _pipeline_path(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    shipped = shipped_pipelines()
    if name in shipped:
        return shipped[name]
    raise InputError(f"{name}: no such pipeline file, and no shipped pipeline of that name "
                     f"(shipped: {', '.join(sorted(shipped))})")


@click.group()
def pipeline() -> None:
    """Batch pipelines: lidar tiles to 2D reference layers."""


@pipeline.command("list")
def list_pipelines() -> None:
    """The pipelines shipped with Lutèce."""
    for name, path in sorted(shipped_pipelines().items()):
        click.echo(f"{name}\t{path}")


@pipeline.command("run", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("file")
@click.option("--validate", is_flag=True, help="Check stage types, options and inputs; touch no data.")
@click.option("--input", "inputs", multiple=True, help="Lidar files or folders (the reader's filename option).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Folder of the products.")
@click.option("--crs-in", help="CRS of input files whose header has none, e.g. EPSG:2154.")
@click.option("--crs-override", is_flag=True, help="Let --crs-in replace the CRS the headers state.")
@click.option("--overwrite", is_flag=True, help="Replace products that no earlier run of this pipeline wrote.")
@click.option("--workers", type=click.IntRange(min=0), help="Dask workers on this machine (0: in-process).")
@click.option("--scheduler", help="Address of an existing Dask scheduler, tcp://HOST:PORT.")
@click.pass_context
def run(ctx: click.Context, file: str, validate: bool, inputs: tuple[str, ...], output: Path | None,
        crs_in: str | None, crs_override: bool, overwrite: bool, workers: int | None, scheduler: str | None) -> None:
    """Run the pipeline FILE (a path or a shipped name); --stage.TAG.OPTION=VALUE overrides one option."""
    from pipelines.plan import refuse_foreign_products
    from pipelines.runner import build_plan, run_pipeline  # numpy, pyproj and the stages: only to run

    env = ctx.obj
    overrides = parse_overrides(ctx.args)
    spec = load_pipeline(_pipeline_path(file), overrides)
    reader_tag = spec.stages[0].tag
    reader_overrides = {**({"filename": list(inputs)} if inputs else {}), **({"crs_in": crs_in} if crs_in else {}),
                        **({"crs_override": True} if crs_override else {})}
    if reader_overrides:
        spec = load_pipeline(_pipeline_path(file), {**overrides, reader_tag: {**overrides.get(reader_tag, {}), **reader_overrides}})
    if output is not None:
        spec = type(spec)(spec.name, spec.stages, output, spec.source)
    config = env.config
    plan = build_plan(spec, crs=config.crs, halo=config.halo)
    from pipelines.buildings import is_buildings, run_buildings
    from pipelines.interiors import is_interiors, run_interiors
    from pipelines.tiles3d import is_tiles3d, run_tiles3d

    # each refuses its writers mixed with others
    runner = run_interiors if is_interiors(plan) else run_buildings if is_buildings(plan) else \
        run_tiles3d if is_tiles3d(plan) else run_pipeline
    if validate:
        click.echo(f"{spec.source}: valid ({len(plan.stages)} stages: "
                   + ", ".join(f"{s.tag} ({s.spec.type})" for s in plan.stages) + ")")
        return
    if not overwrite:
        refuse_foreign_products(plan)
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=env.quiet) as bars:
        tasks: dict[str, int] = {}

        def report(phase: str, done: int, total: int, detail: str = "") -> None:
            label = PHASES.get(phase, phase) + (f" ({detail})" if detail else "")
            if phase not in tasks:
                tasks[phase] = bars.add_task(label, total=total)
            bars.update(tasks[phase], completed=done, total=total, description=label)

        result = runner(plan, workers=config.data["workers"] if workers is None else workers,
                        scheduler=scheduler or config.data["scheduler"], progress=report)
    if result.summary is not None:
        click.echo(f"{spec.name}: {result.summary}")
        for element in result.skipped_elements:
            click.echo(f"  skipped {element['global_id']} ({element['ifc_class']}): {element['reason']}")
    elif result.tiles_reused == result.tiles and not result.products:
        click.echo(f"{spec.name}: nothing to do, every product is up to date in {spec.output}")
    else:
        rate = result.points / result.seconds if result.seconds else 0.0
        click.echo(f"{spec.name}: {result.tiles} tiles ({result.tiles_reused} reused), {result.points:,} points "
                   f"in {result.seconds:.1f} s ({rate:,.0f} points/s)")
    for product in result.products:
        click.echo(f"  wrote  {product}")
    for product in result.skipped_products:
        click.echo(f"  as is  {product} (same inputs and parameters)")
    if result.report is not None:
        click.echo(f"  report {result.report}")
    for warning in getattr(result, "warnings", []):  # also in the products' lineage and the report
        click.echo(f"Warning: {warning['tile']}: {warning['stage']}: {warning['message']}", err=True)
