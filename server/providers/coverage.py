"""Reading a raster version (a COG of the file store) for the coverage and map routes, with rasterio windows.

A coverage subset keeps the COG's own grid and values: the window of whole
pixels that covers the requested box, read at full resolution and written as
a GeoTIFF (exact values) or a PNG (a picture: 8-bit rasters as they are,
others stretched between the version's minimum and maximum). A map is a
picture of the asked box warped onto the map's own grid (in the box's CRS, or
``crs``), from the COG's overview nearest the map's scale. Coverages are not
reprojected: they answer in the raster's CRS.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.routes.http import LRU, BadRequest

MAX_PIXELS = 4096 * 4096  # of a coverage subset, per band
MAX_SIDE = 4096  # of a map
MAX_JSON_VALUES = 512 * 512  # of a CoverageJSON answer, per band (about 3 MB of text)
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ELLIPSOIDAL = "EPSG:4979"  # WGS84 longitude, latitude and height above the ellipsoid: a terrain's heights for 3D globes
ELLIPSOIDAL_URI = "http://www.opengis.net/def/crs/EPSG/0/4979"
TERRAIN_NAMES = {"dtm", "mnt", "terrain"}  # a raster layer so named (id or keyword) holds orthometric ground heights
COVERAGE_JSON = "application/prs.coverage+json"
_STATS = LRU(128)
# A PNG has no geotransform; rasterio warns on every one (its own silencing is not thread-safe).
warnings.filterwarnings("ignore", message="Dataset has no geotransform")


@dataclass(frozen=True)
class Box:
    """A bounding box and the CRS it is in (an EPSG code, ``OGC:CRS84`` or a WKT)."""

    minx: float
    miny: float
    maxx: float
    maxy: float
    crs: str

    def to(self, crs) -> tuple[float, float, float, float]:
        """The box as the box covering it in ``crs`` (edges densified)."""
        from pyproj import CRS, Transformer

        target = CRS.from_user_input(crs)
        source = CRS.from_user_input(self.crs)
        if source == target:
            return self.minx, self.miny, self.maxx, self.maxy
        transformer = Transformer.from_crs(source, target, always_xy=True)
        return tuple(transformer.transform_bounds(self.minx, self.miny, self.maxx, self.maxy, densify_pts=21))


def parse_crs(value: str | None, default: str) -> str:
    """A CRS parameter (OGC URI, ``EPSG:n`` or ``OGC:CRS84``) as something pyproj reads; 400 when unknown."""
    if not value:
        return default
    text = value.strip()
    if text in (CRS84, "OGC:CRS84", "CRS84", "[OGC:CRS84]"):
        return "OGC:CRS84"
    prefix = "http://www.opengis.net/def/crs/EPSG/0/"
    code = text.removeprefix(prefix).removeprefix("EPSG:").removeprefix("[EPSG:").rstrip("]")
    if code.isdigit() and len(code) <= 6:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_epsg(int(code))
        except CRSError:
            pass
        else:
            return f"EPSG:{code}"
    raise BadRequest("unknown CRS; use an OGC URI such as http://www.opengis.net/def/crs/EPSG/0/2154 or "
                     f"{CRS84}")


def crs_uri(crs: str) -> str | None:
    """The OGC URI of a CRS (for a ``Content-Crs`` header); None when it has no EPSG or OGC code."""
    from pyproj import CRS

    authority = CRS.from_user_input(crs).to_authority()
    if authority is None or authority[0] not in ("EPSG", "OGC"):
        return None
    return CRS84 if authority == ("OGC", "CRS84") else f"http://www.opengis.net/def/crs/EPSG/0/{authority[1]}"


def parse_bbox(value: str, crs: str) -> Box:
    """``minx,miny,maxx,maxy`` as a :class:`Box`; 400 for anything else (3 or 5 values, NaN, inverted, out of range)."""
    parts = value.split(",")
    if len(parts) != 4:
        raise BadRequest("bbox needs four numbers: minx,miny,maxx,maxy")
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        raise BadRequest("bbox needs four numbers: minx,miny,maxx,maxy") from None
    if not all(math.isfinite(n) for n in numbers):
        raise BadRequest("bbox values must be finite numbers")
    minx, miny, maxx, maxy = numbers
    if minx >= maxx or miny >= maxy:
        raise BadRequest("bbox is empty or inverted: minx must be below maxx and miny below maxy")
    if crs == "OGC:CRS84" and not (-180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90):
        raise BadRequest("bbox is out of range for CRS84 (longitudes -180..180, latitudes -90..90)")
    return Box(minx, miny, maxx, maxy, crs)


def parse_subset(value: str, crs: str) -> Box:
    """OGC API Coverages' ``subset=x(a:b),y(c:d)`` (axes x/E/Lon and y/N/Lat) as a :class:`Box`."""
    axes: dict[str, tuple[float, float]] = {}
    for item in value.split(","):
        name, _, rest = item.strip().partition("(")
        if not rest.endswith(")") or ":" not in rest:
            raise BadRequest("subset must read like x(minx:maxx),y(miny:maxy)")
        low, _, high = rest[:-1].partition(":")
        try:
            bounds = float(low.strip('"')), float(high.strip('"'))
        except ValueError:
            raise BadRequest("subset bounds must be numbers") from None
        axis = {"x": "x", "e": "x", "lon": "x", "long": "x", "easting": "x",
                "y": "y", "n": "y", "lat": "y", "northing": "y"}.get(name.strip().lower())
        if axis is None:
            raise BadRequest("subset axes are x (or E, Lon) and y (or N, Lat)")
        axes[axis] = bounds
    if set(axes) != {"x", "y"}:
        raise BadRequest("subset needs both axes, x and y")
    return parse_bbox(f"{axes['x'][0]},{axes['y'][0]},{axes['x'][1]},{axes['y'][1]}", crs)


def read_window(path: Path, box: Box | None, out_shape: tuple[int, int] | None = None):
    """The pixels of the COG that cover ``box`` (all of it when None), with their grid.

    Returns
    -------
    (data, transform, profile)
        ``data`` a masked array (bands, rows, cols); ``transform`` its grid;
        ``profile`` the COG's CRS, nodata and dtype.

    Raises
    ------
    BadRequest
        The box does not meet the raster, or the subset is too large.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window, from_bounds

    with rasterio.open(path) as dataset:
        full = Window(0, 0, dataset.width, dataset.height)
        if box is None:
            window = full
        else:
            minx, miny, maxx, maxy = box.to(dataset.crs)
            left, bottom, right, top = dataset.bounds
            bounds = max(minx, left), max(miny, bottom), min(maxx, right), min(maxy, top)
            if not (bounds[0] < bounds[2] and bounds[1] < bounds[3]):
                raise BadRequest("bbox does not meet the coverage's extent")
            window = _covering_window(from_bounds(*bounds, transform=dataset.transform), full)
        if out_shape is None and window.width * window.height > MAX_PIXELS:
            raise BadRequest(f"the subset has {window.width} x {window.height} pixels, more than {MAX_PIXELS}; "
                             f"ask for a smaller bbox or a map")
        shape = (dataset.count, *(out_shape or (window.height, window.width)))
        data = dataset.read(window=window, out_shape=shape, masked=True, resampling=Resampling.bilinear)
        transform = dataset.window_transform(window)
        if out_shape is not None:
            transform = transform * transform.scale(window.width / out_shape[1], window.height / out_shape[0])
        profile = {"crs": dataset.crs, "nodata": dataset.nodata, "dtype": dataset.dtypes[0]}
    return data, transform, profile


def read_map(path: Path, box: Box | None, out_shape: tuple[int, int], crs: str | None = None):
    """A picture of exactly ``box`` at ``out_shape``, on a grid of ``crs`` (default the box's CRS); outside masked.

    A map is a picture of the box asked for (a map tile at the raster's edge
    is partly empty), unlike a coverage subset, which keeps the raster's grid.
    The raster is warped onto the map's own grid (one pixel per map pixel, in
    the map's CRS): a web map tile in EPSG:3857 is a skewed quadrilateral in
    Lambert-93, so reading the Lambert-93 box around it would shift and stretch
    the picture by pixels and leave steps at the tile edges.
    """
    if box is None:
        return read_window(path, None, out_shape)[0]
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_bounds as transform_from_bounds
    from rasterio.vrt import WarpedVRT

    target = crs or box.crs
    minx, miny, maxx, maxy = box.to(target)
    height, width = out_shape
    transform = transform_from_bounds(minx, miny, maxx, maxy, width, height)
    with rasterio.open(path) as dataset:
        left, bottom, right, top = box.to(dataset.crs)
        if not (left < dataset.bounds.right and right > dataset.bounds.left
                and bottom < dataset.bounds.top and top > dataset.bounds.bottom):
            raise BadRequest("bbox does not meet the coverage's extent")
        level = _overview_level(dataset, (right - left) / width)
    with rasterio.open(path, overview_level=level) as dataset, \
            WarpedVRT(dataset, crs=target, transform=transform, width=width, height=height,
                      resampling=Resampling.bilinear, add_alpha=dataset.nodata is None) as warped:
        bands = list(range(1, dataset.count + 1))
        return warped.read(bands, masked=True)


def is_terrain(layer) -> bool:
    """Whether a raster layer holds ground heights (a DTM), which the server also serves in EPSG:4979."""
    names = {layer.id.lower(), *(keyword.lower() for keyword in layer.keywords)}
    return bool(names & TERRAIN_NAMES)


def geoid_name() -> str:
    """The geoid grid added to a terrain's heights in EPSG:4979 (the 3D Tiles placement's default)."""
    from gis.geoid import DEFAULT_GEOID, find_default_geoid

    grid = find_default_geoid()
    return f"EGM96 ({grid.name})" if grid.name == DEFAULT_GEOID else grid.name


def parse_scale_size(value: str) -> tuple[int, int]:
    """OGC API Coverages' ``scale-size=x(W),y(H)`` as (height, width); 400 for anything else."""
    sizes: dict[str, int] = {}
    for item in value.split(","):
        name, _, rest = item.strip().partition("(")
        axis = {"x": "x", "e": "x", "lon": "x", "y": "y", "n": "y", "lat": "y"}.get(name.strip().lower())
        try:
            sizes[axis] = int(rest.removesuffix(")"))
        except ValueError:
            raise BadRequest("scale-size must read like x(65),y(65)") from None
    if set(sizes) != {"x", "y"} or not all(0 < n <= MAX_SIDE for n in sizes.values()):
        raise BadRequest(f"scale-size needs x(W),y(H) with W and H between 1 and {MAX_SIDE}")
    return sizes["y"], sizes["x"]


def read_heights(path: Path, box: Box, out_shape: tuple[int, int]):
    """Ground heights above the WGS84 ellipsoid on a CRS84 grid of exactly ``box``: the orthometric heights of
    the raster plus the geoid separation the 3D Tiles placement adds (:mod:`gis.geoid`), so a terrain made of them
    lies under the tilesets."""
    from rasterio.transform import from_bounds as transform_from_bounds

    from gis.geoid import ellipsoidal_heights

    data = read_map(path, box, out_shape, crs="OGC:CRS84")
    transform = transform_from_bounds(*box.to("OGC:CRS84"), out_shape[1], out_shape[0])
    columns, rows = np.meshgrid(np.arange(out_shape[1]) + 0.5, np.arange(out_shape[0]) + 0.5)
    lon, lat = transform * (columns, rows)
    try:
        shifted = ellipsoidal_heights(lon, lat, data[0].filled(0.0))
    except ValueError as error:
        raise BadRequest(f"no ellipsoidal heights here: {error}") from None
    return np.ma.masked_array(shifted[np.newaxis].astype("float32"), mask=np.ma.getmaskarray(data[:1]))


def coverage_json(data, transform, crs: str) -> bytes:
    """A CoverageJSON grid (OGC Community Standard) of the bands: pixel centres on the axes, nodata as null."""
    import json

    bands, height, width = data.shape
    if width * height > MAX_JSON_VALUES:
        raise BadRequest(f"a CoverageJSON answer holds at most {MAX_JSON_VALUES} values per band, not {width} x "
                         f"{height}; ask for a smaller bbox, a scale-size or f=GeoTIFF")
    x0, y0 = transform * (0.5, 0.5)
    x1, y1 = transform * (width - 0.5, height - 0.5)
    values = data.astype("float64").filled(np.nan)
    document = {
        "type": "Coverage",
        "domain": {"type": "Domain", "domainType": "Grid",
                   "axes": {"x": {"start": x0, "stop": x1, "num": width}, "y": {"start": y0, "stop": y1, "num": height}},
                   "referencing": [{"coordinates": ["x", "y"],
                                    "system": {"type": "GeographicCRS" if _geographic(crs) else "ProjectedCRS",
                                               "id": crs_uri(crs)}}]},
        "parameters": {f"band{b}": {"type": "Parameter", "observedProperty": {"label": {"en": f"band {b}"}}}
                       for b in range(1, bands + 1)},
        "ranges": {f"band{b}": {"type": "NdArray", "dataType": "float", "axisNames": ["y", "x"],
                                "shape": [height, width],
                                "values": [None if np.isnan(v) else round(float(v), 3) for v in values[b - 1].ravel()]}
                   for b in range(1, bands + 1)},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _geographic(crs) -> bool:
    from pyproj import CRS

    return CRS.from_user_input(crs).is_geographic


def _overview_level(dataset, metres_per_pixel: float) -> int | None:
    """The coarsest overview still finer than the map's pixels (None: the full resolution), as GDAL's own choice."""
    level = None
    for index, factor in enumerate(dataset.overviews(1)):
        if dataset.res[0] * factor <= metres_per_pixel:
            level = index
    return level


def _covering_window(wanted, full):
    """The window of whole pixels covering ``wanted``, within ``full``; 400 when they do not meet."""
    from rasterio.windows import Window

    col0, row0 = max(math.floor(wanted.col_off + 1e-9), 0), max(math.floor(wanted.row_off + 1e-9), 0)
    col1 = min(math.ceil(wanted.col_off + wanted.width - 1e-9), int(full.width))
    row1 = min(math.ceil(wanted.row_off + wanted.height - 1e-9), int(full.height))
    if col1 <= col0 or row1 <= row0:
        raise BadRequest("bbox does not meet the coverage's extent")
    return Window(col0, row0, col1 - col0, row1 - row0)


def geotiff(data, transform, profile) -> bytes:
    """A GeoTIFF of the subset (DEFLATE), values as stored."""
    from rasterio.io import MemoryFile

    with MemoryFile() as memory:
        with memory.open(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                         dtype=profile["dtype"], crs=profile["crs"], transform=transform, nodata=profile["nodata"],
                         compress="deflate") as out:
            out.write(data.filled(profile["nodata"]) if profile["nodata"] is not None else data.data)
        return memory.read()


def png(data, stats: tuple[float, float] | None) -> bytes:
    """A PNG picture of the first band: 8-bit as is, others stretched over ``stats``; nodata transparent."""
    from rasterio.io import MemoryFile

    band = data[0]
    if data.dtype == np.uint8 or stats is None:
        grey = band.filled(0).astype(np.uint8)
    else:
        low, high = stats
        scaled = (band.astype("float64") - low) / ((high - low) or 1.0) * 255.0
        grey = np.clip(np.round(scaled.filled(0)), 0, 255).astype(np.uint8)
    alpha = np.where(np.ma.getmaskarray(band), 0, 255).astype(np.uint8)
    with MemoryFile() as memory:
        with memory.open(driver="PNG", width=grey.shape[1], height=grey.shape[0], count=2, dtype="uint8") as out:
            out.write(np.stack([grey, alpha]))
        return memory.read()


def band_stats(path: Path, key: str) -> tuple[float, float] | None:
    """Minimum and maximum of the first band, read from the smallest overview (cached per version)."""
    cached = _STATS.get(key)
    if cached is not None:
        return cached or None
    import rasterio

    with rasterio.open(path) as dataset:
        factors = dataset.overviews(1)
        scale = factors[-1] if factors else max(1, max(dataset.width, dataset.height) // 512)
        shape = (max(1, dataset.height // scale), max(1, dataset.width // scale))
        values = dataset.read(1, out_shape=shape, masked=True)
    stats = (float(values.min()), float(values.max())) if values.count() else ()
    _STATS.put(key, stats)
    return stats or None


def describe(path: Path) -> dict:
    """Grid, CRS and bands of the COG, for the collection's document."""
    import rasterio

    with rasterio.open(path) as dataset:
        return {"width": dataset.width, "height": dataset.height, "bounds": tuple(dataset.bounds),
                "crs": dataset.crs.to_string() if dataset.crs else None, "count": dataset.count,
                "dtype": dataset.dtypes[0], "nodata": dataset.nodata, "resolution": dataset.res}
