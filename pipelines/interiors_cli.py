"""``lutece tiles interior PLAN OUT``: one building's plans straight to its per-storey 3D Tiles.

Found by ``lutece tiles`` through the ``lutece.tiles.commands`` entry-point group, so that ``tiles/`` does not
import ``pipelines/`` (which reads the plans). The same reading, release profiles and tileset writer as the
``plans-to-interiors`` pipeline.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import click

from gis.errors import InputError, OutputExistsError


def _origin(ctx, param, value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give X,Y or X,Y,Z in metres, e.g. 651159.57,6861227.16,36.42") from None
    if len(numbers) not in (2, 3):
        raise click.BadParameter("give X,Y or X,Y,Z")
    return numbers


@click.command("interior")
@click.argument("plan", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--profile", type=click.Choice(["full", "open"]), default="full", show_default=True,
              help="open: sensitive rooms generalised, no personal name (for anyone); full: as the plans say.")
@click.option("--sensitive", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML list of sensitive rooms for --profile open (default: the shipped list).")
@click.option("--origin", callback=_origin, help="X,Y[,Z] of the model's origin, for an IFC without georeferencing.")
@click.option("--rotation", type=float, default=0.0, show_default=True,
              help="Degrees, counter-clockwise from grid east, of the model's x axis (with --origin).")
@click.option("--crs", "origin_crs", help="CRS of --origin (default: the working CRS).")
@click.option("--heights", type=click.Choice(["orthometric", "ellipsoidal"]), default="orthometric",
              show_default=True, help="Plan heights: orthometric get the geoid added; ellipsoidal are kept.")
@click.option("--geoid", help="Geoid grid PROJ can read (default: EGM96, egm96_15.gtx from proj-data).")
@click.option("--workers", "--threads", "workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Geometry processes, each running ifcopenshell's iterator on one thread (0: one per core this "
                   "process may use, at most one per half megabyte of IFC; processes, not the iterator's threads: "
                   "two of those take twice the CPU).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.pass_obj
def interior(env, plan: Path, out: Path, profile: str, sensitive: Path | None, origin, rotation: float,
             origin_crs: str | None, heights: str, geoid: str | None, workers: int, overwrite: bool) -> None:
    """Convert a building's PLAN (IFC2x3/IFC4, or indoor GeoJSON) into a 3D Tiles folder OUT, one tile per storey."""
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: exists; pass --overwrite to replace it, or choose another OUT")
    with _geometry(plan, workers) as geometry:  # an IFC's geometry children work while this process imports
        _convert(env, plan, out, profile, sensitive, (origin, rotation, origin_crs), heights, geoid, geometry)


def _geometry(plan: Path, workers: int):
    """An IFC's geometry children (:func:`pipelines.algorithms.ifc.geometry.start`), started now; else nothing."""
    if plan.suffix.lower() != ".ifc":
        return contextlib.nullcontext()
    from pipelines.algorithms.ifc.geometry import start

    return start(plan, workers or None)


def _convert(env, plan: Path, out: Path, profile: str, sensitive: Path | None, georef: tuple, heights: str,
             geoid: str | None, geometry) -> None:
    from pipelines.algorithms.release import Rules, release
    from pipelines.plan import working_crs
    from tiles.geo import HeightModel, Placement
    from tiles.interior import write_storey_tileset

    rules = Rules.load(sensitive, "--sensitive: ")
    model = HeightModel.resolve(heights, geoid)  # a missing grid is refused before the plans are read
    crs = working_crs(env.config.crs if env is not None else "EPSG:2154")
    building = _read(plan, crs, *georef, geometry)
    released = release(building, profile, rules)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        write_storey_tileset(released.meshes(), released.storeys, Placement(building.crs, model), partial,
                             metadata={"product": "interior", "profile": profile, "source": plan.name})
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    partial.rename(out)
    _write_lineage(out, plan, profile, rules, building, model)
    for skipped in building.skipped:
        click.echo(f"skipped {skipped.global_id} ({skipped.ifc_class}): {skipped.reason}", err=True)
    rooms = int((building.elements["class"] == "room").sum())
    click.echo(f"{out}/tileset.json: {len(building.elements)} elements ({rooms} rooms) on {len(building.storeys)} "
               f"storeys, profile {profile}, {len(building.skipped)} skipped")


def _read(plan: Path, crs, origin, rotation: float, origin_crs: str | None, geometry):
    if plan.suffix.lower() == ".ifc":
        from pipelines.algorithms.ifc.georef import GeorefOptions
        from pipelines.algorithms.ifc.reader import read_ifc

        return read_ifc(plan, crs, GeorefOptions(origin, rotation, origin_crs), geometry=geometry)
    if origin is not None:
        raise InputError(f"--origin: {plan} is not an IFC file; indoor plans carry their own CRS")
    from pipelines.algorithms.indoor import read_indoor

    return read_indoor(plan, crs)


def _write_lineage(out: Path, plan: Path, profile: str, rules, building, model) -> None:
    from pipelines.interiors import SOFTWARE
    from pipelines.lineage import file_sha256, software_versions

    lineage = {"inputs": [{"path": str(plan.resolve()), "sha256": file_sha256(plan)}],
               "stages": [{"type": "lutece tiles interior", "options": {"profile": profile}}],
               "profile": profile, "sensitive_list_sha256": rules.sha256, "georeferencing": building.georeferencing,
               "heights": model.describe(), "skipped": [vars(s) for s in building.skipped],
               "software": software_versions(SOFTWARE), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    sidecar = out.with_name(out.name + ".lineage.json")
    sidecar.write_text(json.dumps({"product": out.name, "profile": profile, "layers": {out.name: lineage}}, indent=1),
                       encoding="utf-8")
