"""OGC API Coverages and a map preview for raster layers.

Routes (``ID`` a raster layer)::

    /collections/ID/coverage    the COG's values: ``bbox`` (+ ``bbox-crs``) or ``subset=x(a:b),y(c:d)``
                                (+ ``subset-crs``; default the raster's CRS), ``f=GeoTIFF`` (default),
                                ``covjson`` (CoverageJSON) or ``png``; with ``scale-size=x(W),y(H)`` and/or
                                ``crs`` the values are resampled onto a W x H grid of exactly the box in
                                ``crs``; ``crs=EPSG:4979`` (terrain layers: id or keyword dtm, mnt,
                                terrain) gives heights above the WGS84 ellipsoid (the geoid the 3D Tiles
                                placement uses added), for 3D globes
    /collections/ID/map         a PNG map: ``bbox`` (+ ``bbox-crs``), ``crs`` (the map's grid; default the
                                bbox's CRS), ``width``, ``height`` (<= 4096); the picture covers exactly the
                                box on a grid of ``crs`` (a map tile at the raster's edge is partly
                                transparent), which the web viewer's map tiles need

Coverages are in the raster's own CRS and grid (see :mod:`server.providers.coverage`);
they carry a strong ETag of the version's sha256 and the parameters, and
``Cache-Control: no-cache`` (the URL does not name the version).
"""

from __future__ import annotations

import hashlib

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from server.providers import coverage
from server.routes.http import CORS_HEADERS, BadRequest, Delivery, not_found

KINDS = ("raster",)
FORMATS = {"geotiff": "image/tiff; application=geotiff", "tif": "image/tiff; application=geotiff",
           "tiff": "image/tiff; application=geotiff", "image/tiff": "image/tiff; application=geotiff",
           "png": "image/png", "image/png": "image/png", "covjson": coverage.COVERAGE_JSON,
           "coveragejson": coverage.COVERAGE_JSON, coverage.COVERAGE_JSON: coverage.COVERAGE_JSON}

RULES = Map([
    Rule("/collections/<collection>/coverage", endpoint="coverage"),
    Rule("/collections/<collection>/map", endpoint="map"),
], strict_slashes=False, merge_slashes=False)


def handle(delivery: Delivery, request: Request, endpoint: str, collection: str) -> Response:
    layer = delivery.layer(request, collection, KINDS)
    if layer is None:
        return not_found()
    version = delivery.version(layer)
    path = delivery.catalog().backend.files_path(version)
    args = request.args
    native = version.crs or layer.crs or "EPSG:2154"
    if endpoint == "coverage":
        mimetype = FORMATS.get((args.get("f") or "geotiff").lower())
        if mimetype is None:
            raise BadRequest("unknown format f; use GeoTIFF, CoverageJSON (covjson) or png")
        box = _box(args, native)
        if "scale-size" in args or "crs" in args:
            data, transform, profile = _resampled(args, layer, path, box, native)
        else:
            data, transform, profile = coverage.read_window(path, box)
        if mimetype == "image/png":
            body = coverage.png(data, coverage.band_stats(path, version.checksum))
        elif mimetype == coverage.COVERAGE_JSON:
            body = coverage.coverage_json(data, transform, profile["crs"])
        else:
            body = coverage.geotiff(data, transform, profile)
        return _with_crs(_response(request, body, mimetype, version.checksum), profile["crs"])
    if (args.get("f") or "png").lower() not in ("png", "image/png"):
        raise BadRequest("a map is a PNG; use f=png")
    box = _box(args, native)
    size = _map_size(args, coverage.describe(path), box, native)
    crs = coverage.parse_crs(args.get("crs"), box.crs) if box is not None else native
    data = coverage.read_map(path, box, out_shape=size, crs=crs)
    body = coverage.png(data, coverage.band_stats(path, version.checksum))
    return _with_crs(_response(request, body, "image/png", version.checksum), crs)


def _with_crs(response, crs: str):
    """The answer with its ``Content-Crs`` header (OGC API Features Part 2's), when the CRS has a URI."""
    uri = coverage.crs_uri(crs)
    if uri:
        response.headers["Content-Crs"] = f"<{uri}>"
    return response


def _resampled(args, layer, path, box: coverage.Box | None, native: str):
    """A coverage on the grid of exactly ``box`` (``scale-size`` samples, in ``crs``), warped like a map.

    ``crs=EPSG:4979`` (a terrain layer only) answers heights above the WGS84
    ellipsoid on a CRS84 grid: what a 3D globe's terrain needs.
    """
    from rasterio.transform import from_bounds

    if box is None:
        raise BadRequest("scale-size and crs need a bbox or subset")
    crs = coverage.parse_crs(args.get("crs"), native)
    size = coverage.parse_scale_size(args["scale-size"]) if "scale-size" in args else \
        _map_size({}, coverage.describe(path), box, native)
    if crs == coverage.ELLIPSOIDAL:
        if not coverage.is_terrain(layer):
            raise BadRequest(f"crs {coverage.ELLIPSOIDAL_URI} is served for terrain (DTM) layers only")
        data = coverage.read_heights(path, box, size)
        grid = "OGC:CRS84"
    else:
        data = coverage.read_map(path, box, size, crs=crs)
        grid = crs
    transform = from_bounds(*box.to(grid), size[1], size[0])
    return data.astype("float32"), transform, {"crs": crs, "nodata": float("nan"), "dtype": "float32"}


def _box(args, native: str) -> coverage.Box | None:
    if "bbox" in args and "subset" in args:
        raise BadRequest("give bbox or subset, not both")
    if "bbox" in args:
        return coverage.parse_bbox(args["bbox"], coverage.parse_crs(args.get("bbox-crs"), "OGC:CRS84"))
    if "subset" in args:
        return coverage.parse_subset(args["subset"], coverage.parse_crs(args.get("subset-crs"), native))
    return None


def _map_size(args, grid: dict, box: coverage.Box | None, native: str) -> tuple[int, int]:
    """(height, width) of a map: as asked, else 512 on the longer side with the box's proportions."""
    width, height = _int(args, "width"), _int(args, "height")
    minx, miny, maxx, maxy = box.to(native) if box is not None else grid["bounds"]
    ratio = (maxy - miny) / (maxx - minx)
    if width is None and height is None:
        width = 512 if ratio <= 1 else max(1, round(512 / ratio))
    if width is None:
        width = max(1, round(height / ratio))
    if height is None:
        height = max(1, round(width * ratio))
    if not (0 < width <= coverage.MAX_SIDE and 0 < height <= coverage.MAX_SIDE):
        raise BadRequest(f"width and height must be between 1 and {coverage.MAX_SIDE}")
    return height, width


def _int(args, name: str) -> int | None:
    if name not in args:
        return None
    try:
        return int(args[name])
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None


def _response(request: Request, body: bytes, mimetype: str, checksum: str) -> Response:
    query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True)))
    response = Response(body, mimetype=mimetype)
    response.set_etag(hashlib.sha256(f"{checksum}?{request.path}?{query}".encode()).hexdigest()[:40])
    response.headers["Cache-Control"] = "no-cache"
    response.headers.update(CORS_HEADERS)
    return response.make_conditional(request)
