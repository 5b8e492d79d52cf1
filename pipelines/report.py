"""The run report: one HTML page with quicklooks and figures, for an analyst's browser.

Quicklooks are PNGs read from the products' overviews (never the full
rasters): the hillshade with the footprints drawn on it, the nDSM, the point
density, each ramp with its colour scale; the class histogram is drawn in
HTML. The page says where the data is (CRS, horizontal and vertical, and
units; extent; height range), how dense it is, what each product holds
(features per layer, files and points of a point cloud), every warning of
the run, and a table of the tiles (points, density, time, warnings): what
catches a bad run before the map does. Nothing here is needed to use the
products; it is how a person checks them at a glance.
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyproj
import rasterio
import rasterio.errors
import rasterio.features
from rasterio.enums import Resampling

from gis import asprs

QUICKLOOK_PIXELS = 1024
# A perceptually ordered ramp (viridis anchors) for heights and densities.
RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=float)


@dataclass
class RunFigures:
    pipeline: str
    tiles: int
    tiles_reused: int
    points: int
    seconds: float
    classes: dict[int, int]
    products: list[Path]
    tables: list[Table] = field(default_factory=list)  # a pipeline's own figures (buildings: LoDs, footprints)
    crs: pyproj.CRS | None = None  # the working CRS, the products'
    tiles_table: list[dict] = field(default_factory=list)  # each tile's summary: tile, points, density, seconds,
    #                                                        z_range, warnings ({tile, stage, message})
    crs_facts: dict[str, str] = field(default_factory=dict)  # what the reader found of the inputs' CRS and units
    extent: tuple[float, float, float, float] | None = None  # of the tiles' cores, in the working CRS

    @property
    def warnings(self) -> list[dict[str, str]]:
        return [warning for tile in self.tiles_table for warning in tile.get("warnings", [])]


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def write_report(output: Path, figures: RunFigures) -> Path:
    """Write ``report.html`` and its PNGs into ``output/report``; return the page's path."""
    folder = output / "report"
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    hillshade = _first(output, "hillshade_*.tif")
    if hillshade:
        images.append(("Hillshade and building footprints", _hillshade_with_footprints(hillshade, output, folder),
                       "<div class='scale'><span class='swatch' style='background:#e62828'></span> footprint</div>"))
    for pattern, title, unit in (("ndsm_*.tif", "nDSM: height above ground", "m"),
                                 ("density_*.tif", "Point density", "points/m²")):
        path = _first(output, pattern)
        if path:
            png, high = _ramp_png(path, folder / f"{path.stem}.png")
            images.append((title, png, _colour_scale(high, unit)))
    page = output / "report.html"
    partial = page.with_name(page.name + ".partial")
    partial.write_text(_html(figures, images, output), encoding="utf-8")
    partial.replace(page)
    return page


def _first(output: Path, pattern: str) -> Path | None:
    found = sorted(output.glob(pattern))
    return found[0] if found else None


def _read_quicklook(path: Path) -> tuple[np.ndarray, rasterio.Affine, tuple[int, int]]:
    """The raster at most QUICKLOOK_PIXELS wide, read from its overviews."""
    with rasterio.open(path) as dataset:
        scale = max(1.0, max(dataset.width, dataset.height) / QUICKLOOK_PIXELS)
        shape = (max(1, int(dataset.height / scale)), max(1, int(dataset.width / scale)))
        data = dataset.read(1, out_shape=shape, resampling=Resampling.average).astype(float)
        transform = dataset.transform @ rasterio.Affine.scale(dataset.width / shape[1], dataset.height / shape[0])
    return data, transform, shape


def _write_png(rgb: np.ndarray, path: Path) -> Path:
    with warnings.catch_warnings():  # a quicklook is a picture, not a georeferenced raster
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="PNG", width=rgb.shape[2], height=rgb.shape[1], count=3,
                           dtype="uint8", zlevel=1) as png:  # 2-3x faster than the default level, about as small
            png.write(rgb)
    return path


def _hillshade_with_footprints(hillshade: Path, output: Path, folder: Path) -> Path:
    data, transform, shape = _read_quicklook(hillshade)
    grey = np.nan_to_num(data, nan=0).clip(0, 255).astype(np.uint8)
    rgb = np.stack([grey, grey, grey])
    layers = output / "layers.gpkg"
    import geopandas as gpd  # a second of imports, only for a run that made footprints

    if layers.exists() and "footprints" in set(gpd.list_layers(layers)["name"]):
        outlines = gpd.read_file(layers, layer="footprints").geometry.boundary
        if len(outlines):
            drawn = rasterio.features.rasterize(((g, 1) for g in outlines), out_shape=shape, transform=transform,
                                                all_touched=True).astype(bool)
            rgb[0][drawn], rgb[1][drawn], rgb[2][drawn] = 230, 40, 40
    return _write_png(rgb, folder / "hillshade_footprints.png")


def _ramp_png(path: Path, target: Path) -> tuple[Path, float]:
    """The raster drawn with RAMP from 0 (darkest) to its 99th percentile (brightest); (png, that percentile)."""
    data, _, _ = _read_quicklook(path)
    valid = np.isfinite(data)
    high = np.nanpercentile(data, 99) if valid.any() else 1.0
    scaled = np.clip(np.nan_to_num(data, nan=0) / (high or 1.0), 0, 1) * (len(RAMP) - 1)
    low_index = np.floor(scaled).astype(int).clip(0, len(RAMP) - 2)
    weight = (scaled - low_index)[..., None]
    rgb = (RAMP[low_index] * (1 - weight) + RAMP[low_index + 1] * weight).astype(np.uint8)
    rgb[~valid] = 0
    return _write_png(np.moveaxis(rgb, -1, 0), target), float(high or 1.0)


def _colour_scale(high: float, unit: str) -> str:
    """The ramp as a bar labelled 0 to ``high`` (values above it are drawn as ``high``)."""
    stops = ", ".join(f"rgb({r:.0f},{g:.0f},{b:.0f})" for r, g, b in RAMP)
    return (f"<div class='scale'>0 <span class='ramp' style='background:linear-gradient(to right, {stops})'></span> "
            f"{high:,.1f} {html.escape(unit)} and above</div>")


def _html(figures: RunFigures, images: list[tuple[str, Path, str]], output: Path) -> str:
    rate = figures.points / figures.seconds if figures.seconds else 0.0
    rows = _rows((
        ("pipeline", figures.pipeline), ("tiles", f"{figures.tiles} ({figures.tiles_reused} reused from cache)"),
        ("points", f"{figures.points:,}"), ("time", f"{figures.seconds:.1f} s"), ("rate", f"{rate:,.0f} points/s"),
        *_where(figures), ("made", datetime.now(timezone.utc).isoformat(timespec="seconds"))))
    total = sum(figures.classes.values()) or 1
    bars = "".join(
        f"<tr><th>{code} {html.escape(asprs.name(code))}</th><td>{count:,}</td>"
        f"<td><div class='bar' style='width:{300 * count / total:.1f}px'></div> {100 * count / total:.1f} %</td></tr>"
        for code, count in sorted(figures.classes.items()))
    pictures = "".join(f"<figure><img src='report/{p.name}' alt='{html.escape(t)}'><figcaption>{html.escape(t)}"
                       f"{scale}</figcaption></figure>" for t, p, scale in images)
    tables = "".join(_table(table) for table in figures.tables)
    products = "".join(f"<tr><td>{html.escape(str(p.relative_to(output)))}</td><td>{html.escape(_contents(p))}</td>"
                       f"<td>{_size(p) / 1e6:.1f} MB</td></tr>" for p in figures.products if p.exists())
    warnings = "".join(f"<li><b>{html.escape(w.get('tile', ''))}</b>, {html.escape(w.get('stage', ''))}: "
                       f"{html.escape(w.get('message', ''))}</li>" for w in figures.warnings)
    tiles = "".join(
        f"<tr><td>{html.escape(str(t.get('tile', '')))}</td><td>{t.get('points', 0):,}</td>"
        f"<td>{_number(t.get('density'), '{:.2f}')}</td><td>{_number(t.get('seconds'), '{:.1f} s')}</td>"
        f"<td>{'<br>'.join(html.escape(w['stage'] + ': ' + w['message']) for w in t.get('warnings', [])) or '-'}</td></tr>"
        for t in figures.tiles_table)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(figures.pipeline)}: run report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}th{{text-align:left;padding-right:1em}}
td{{padding-right:1em;vertical-align:top}}.bar{{display:inline-block;height:0.8em;background:#3b528b}}
figure{{display:inline-block;margin:0 1em 1em 0;vertical-align:top}}img{{max-width:520px;border:1px solid #ccc}}
.ramp{{display:inline-block;width:200px;height:0.8em;vertical-align:middle}}
.swatch{{display:inline-block;width:1em;height:0.8em}}.warnings{{color:#a40000}}</style></head><body>
<h1>Run report: {html.escape(figures.pipeline)}</h1><table>{rows}</table>
<h2>Warnings ({len(figures.warnings)})</h2><ul class="warnings">{warnings or '<li>none</li>'}</ul>
<h2>Classes of the points the products were made from</h2><table>{bars}</table>
{tables}<h2>Quicklooks</h2>{pictures}
<h2>Products written by this run</h2><table>{products or '<tr><td>none (all up to date)</td></tr>'}</table>
<h2>Tiles</h2><table><tr><th>tile</th><th>points</th><th>pulses/m²</th><th>time</th><th>warnings</th></tr>{tiles}</table>
</body></html>"""


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    note = f"<p>{html.escape(table.note)}</p>" if table.note else ""
    return f"<h2>{html.escape(table.title)}</h2>{note}<table><tr>{head}</tr>{body}</table>"


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)


def _number(value, form: str) -> str:
    return form.format(value) if isinstance(value, (int, float)) else "-"


def _where(figures: RunFigures) -> list[tuple[str, str]]:
    """CRS (horizontal, vertical) and units, extent, height range and density, as report rows."""
    rows: list[tuple[str, str]] = []
    if figures.crs is not None:
        parts = figures.crs.sub_crs_list if figures.crs.is_compound else [figures.crs]
        horizontal = parts[0]
        vertical = parts[1] if len(parts) > 1 else None
        rows.append(("horizontal CRS", f"{horizontal.name} ({horizontal.to_string()}), "
                                       f"{_unit(horizontal)}"))
        rows.append(("vertical CRS", f"{vertical.name} ({vertical.to_string()}), {_unit(vertical)}" if vertical
                     else "not given: heights as in the input files"))
    rows.extend((key, str(value)) for key, value in figures.crs_facts.items())
    if figures.extent is not None:
        xmin, ymin, xmax, ymax = figures.extent
        rows.append(("extent", f"x {xmin:,.1f} to {xmax:,.1f}, y {ymin:,.1f} to {ymax:,.1f} "
                               f"({(xmax - xmin) / 1000:.2f} x {(ymax - ymin) / 1000:.2f} km)"))
    ranges = [t["z_range"] for t in figures.tiles_table if t.get("z_range")]
    if ranges:
        rows.append(("height range", f"{min(r[0] for r in ranges):,.2f} to {max(r[1] for r in ranges):,.2f} m"))
    densities = [t["density"] for t in figures.tiles_table if isinstance(t.get("density"), (int, float))]
    if densities:
        rows.append(("pulse density", f"{min(densities):.2f} to {max(densities):.2f} pulses/m² (first returns per "
                                      "m² of the tiles' covered area)"))
    return rows


def _unit(crs: pyproj.CRS) -> str:
    units = sorted({axis.unit_name for axis in crs.axis_info})
    return "units: " + ", ".join(units) if units else "units unknown"


def _contents(path: Path) -> str:
    """What a product holds: features per layer, raster size, files and points of a point cloud."""
    try:
        if path.is_dir():
            files = sorted(path.glob("*.la[sz]"))
            if files:
                import laspy

                points = 0
                for file in files:
                    with laspy.open(file) as reader:
                        points += reader.header.point_count
                return f"{len(files)} files, {points:,} points"
            return f"{len(list(path.iterdir()))} files"
        if path.suffix == ".gpkg":
            import pyogrio

            return ", ".join(f"{name}: {pyogrio.read_info(path, layer=name)['features']:,} features"
                             for name, _ in pyogrio.list_layers(path))
        if path.suffix == ".tif":
            with rasterio.open(path) as dataset:
                return f"{dataset.width} x {dataset.height} cells of {dataset.res[0]:g} m"
    except Exception as exc:  # noqa: BLE001 - the report says what it could not read, and goes on
        return f"unreadable ({exc})"
    return ""


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
