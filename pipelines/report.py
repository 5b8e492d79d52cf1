"""The run report: one HTML page with quicklooks and figures, for an analyst's browser.

Quicklooks are PNGs read from the products' overviews (never the full
rasters): the hillshade with the footprints drawn on it, the nDSM, the point
density; the class histogram is drawn in HTML. Nothing here is needed to use
the products; it is how a person checks them at a glance.
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
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
        images.append(("Hillshade and building footprints", _hillshade_with_footprints(hillshade, output, folder)))
    for pattern, title in (("ndsm_*.tif", "nDSM: height above ground (m)"), ("density_*.tif", "Point density (points/m²)")):
        path = _first(output, pattern)
        if path:
            images.append((title, _ramp_png(path, folder / f"{path.stem}.png")))
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


def _ramp_png(path: Path, target: Path) -> Path:
    data, _, _ = _read_quicklook(path)
    valid = np.isfinite(data)
    high = np.nanpercentile(data, 99) if valid.any() else 1.0
    scaled = np.clip(np.nan_to_num(data, nan=0) / (high or 1.0), 0, 1) * (len(RAMP) - 1)
    low_index = np.floor(scaled).astype(int).clip(0, len(RAMP) - 2)
    weight = (scaled - low_index)[..., None]
    rgb = (RAMP[low_index] * (1 - weight) + RAMP[low_index + 1] * weight).astype(np.uint8)
    rgb[~valid] = 0
    return _write_png(np.moveaxis(rgb, -1, 0), target)


def _html(figures: RunFigures, images: list[tuple[str, Path]], output: Path) -> str:
    rate = figures.points / figures.seconds if figures.seconds else 0.0
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in (
        ("pipeline", figures.pipeline), ("tiles", f"{figures.tiles} ({figures.tiles_reused} reused from cache)"),
        ("points", f"{figures.points:,}"), ("time", f"{figures.seconds:.1f} s"), ("rate", f"{rate:,.0f} points/s"),
        ("made", datetime.now(timezone.utc).isoformat(timespec="seconds"))))
    total = sum(figures.classes.values()) or 1
    bars = "".join(
        f"<tr><th>{code} {html.escape(asprs.name(code))}</th><td>{count:,}</td>"
        f"<td><div class='bar' style='width:{300 * count / total:.1f}px'></div> {100 * count / total:.1f} %</td></tr>"
        for code, count in sorted(figures.classes.items()))
    pictures = "".join(f"<figure><img src='report/{p.name}' alt='{html.escape(t)}'><figcaption>{html.escape(t)}"
                       f"</figcaption></figure>" for t, p in images)
    tables = "".join(_table(table) for table in figures.tables)
    products = "".join(f"<li>{html.escape(str(p.relative_to(output)))} ({p.stat().st_size / 1e6:.1f} MB)</li>"
                       for p in figures.products if p.exists())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(figures.pipeline)}: run report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}th{{text-align:left;padding-right:1em}}
.bar{{display:inline-block;height:0.8em;background:#3b528b}}figure{{display:inline-block;margin:0 1em 1em 0}}
img{{max-width:520px;border:1px solid #ccc}}</style></head><body>
<h1>Run report: {html.escape(figures.pipeline)}</h1><table>{rows}</table>
<h2>Classes of the points the products were made from</h2><table>{bars}</table>
{tables}<h2>Quicklooks</h2>{pictures}<h2>Products written by this run</h2><ul>{products or '<li>none (all up to date)</li>'}</ul>
</body></html>"""


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    note = f"<p>{html.escape(table.note)}</p>" if table.note else ""
    return f"<h2>{html.escape(table.title)}</h2>{note}<table><tr>{head}</tr>{body}</table>"
