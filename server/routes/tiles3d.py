"""3D Tiles delivery: a collection per tileset (in the spirit of OGC API 3D GeoVolumes) and its files.

Routes (``ID`` a layer of kind ``pointcloud-3dtiles`` or ``mesh-3dtiles``)::

    /collections/ID                         the collection, linking to its tileset.json
    /collections/ID/3dtiles                 307 to the current version's versioned tileset.json
    /collections/ID/3dtiles/SHA256/PATH     a file of the version whose checksum is SHA256

A version is immutable and its files sit under ``files/<sha256>/``, so a
versioned URL never changes content: strong ETags, ``Cache-Control:
immutable``, ranges (``Range``/``If-Range``), and gzip for JSON when asked.
Any retained version of a visible layer is served, so a viewer that loaded
the tileset before a publication finishes drawing it. A path is checked
segment by segment (no ``..``, ``.``, empty, absolute, NUL or backslash
segments: 400) before it meets the file system, and must resolve inside the
version's folder.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from server.routes.http import (CORS_HEADERS, LRU, BadRequest, Delivery, NotFound, base_url, json_response,
                                not_found, wants_gzip)

KINDS = ("pointcloud-3dtiles", "mesh-3dtiles")
IMMUTABLE = "public, max-age=31536000, immutable"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MEDIA_TYPES = {
    ".json": "application/json",
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".pnts": "application/octet-stream",
    ".b3dm": "application/octet-stream",
    ".i3dm": "application/octet-stream",
    ".cmpt": "application/octet-stream",
    ".subtree": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".ktx2": "image/ktx2",
    ".webp": "image/webp",
}
_GZIPPED = LRU(256)  # (sha256, path) -> gzip of a JSON file
_EXTENTS = LRU(256)  # sha256 -> CRS84 bbox of the root tile, or None

RULES = Map([
    Rule("/collections/<collection>", endpoint="collection"),
    Rule("/collections/<collection>/3dtiles", endpoint="entry"),
    Rule("/collections/<collection>/3dtiles/<sha>/<path:path>", endpoint="file"),
], strict_slashes=False, merge_slashes=False)


def handle(delivery: Delivery, request: Request, endpoint: str, collection: str, **args: str) -> Response | None:
    """Answer one 3D Tiles request; ``None`` for a collection that is not a 3D Tiles one (someone else's)."""
    layer = delivery.layer(request, collection, KINDS)
    if endpoint == "collection":
        return None if layer is None else json_response(collection_document(delivery, request, layer))
    if layer is None:
        return not_found()
    if endpoint == "entry":
        return Response(status=307, headers={"Location": tileset_url(delivery, request, layer),
                                              "Cache-Control": "no-cache", **CORS_HEADERS})
    return serve_file(delivery, request, layer, args["sha"], args["path"])


def tileset_url(delivery: Delivery, request: Request, layer) -> str:
    """The versioned URL of the current version's tileset.json."""
    version = delivery.version(layer)
    return f"{base_url(request)}/collections/{layer.id}/3dtiles/{version.checksum}/tileset.json"


def tileset_links(delivery: Delivery, request: Request, layer) -> list[dict[str, Any]]:
    """The link of a 3D Tiles collection to its versioned tileset.json."""
    return [{"rel": "original", "type": "application/json+3dtiles", "title": "3D Tiles tileset (tileset.json)",
             "href": tileset_url(delivery, request, layer)}]


def collection_document(delivery: Delivery, request: Request, layer) -> dict[str, Any]:
    """The collection of a tileset: metadata, CRS84 extent of its root tile, the link to its tileset.json."""
    version = delivery.version(layer)
    root = f"{base_url(request)}/collections/{layer.id}"
    tileset = tileset_links(delivery, request, layer)
    document: dict[str, Any] = {
        "id": layer.id, "title": layer.title, "description": layer.description,
        "keywords": list(layer.keywords), "collectionType": "3d-container", "itemType": "3dtiles",
        "crs": ["http://www.opengis.net/def/crs/EPSG/0/4978"],
        "content": tileset,
        "links": [{"rel": "self", "type": "application/json", "href": root}, *tileset,
                  {"rel": "license", "title": layer.licence, "href": f"{root}#licence"}],
        "license": layer.licence, "lutece:version": version.number,
    }
    bbox = tileset_extent(delivery.catalog().backend.files_path(version), version.checksum)
    if bbox is not None:
        document["extent"] = {"spatial": {"bbox": [bbox], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}}
    return document


def serve_file(delivery: Delivery, request: Request, layer, sha: str, path: str) -> Response:
    """One file of a retained version of ``layer``: conditional, ranged, gzip for JSON when accepted."""
    parts = safe_parts(path)
    if not _SHA256.match(sha):
        raise NotFound("no such version of this tileset")
    version = next((v for v in delivery.retained(layer) if v.checksum == sha), None)
    if version is None:
        raise NotFound("no such version of this tileset")
    folder = delivery.catalog().backend.files_path(version).parent
    target = folder.joinpath(*parts)
    try:
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound("no such file in this tileset") from None
    if folder.resolve() not in resolved.parents or not resolved.is_file():
        raise NotFound("no such file in this tileset")
    relative = "/".join(parts)
    mimetype = MEDIA_TYPES.get(resolved.suffix.lower(), "application/octet-stream")
    etag = hashlib.sha256(f"{sha}/{relative}".encode()).hexdigest()[:40]
    if mimetype == "application/json" and wants_gzip(request) and "Range" not in request.headers:
        response = _gzipped(request, resolved, sha, relative, etag)
    else:
        response = send_file(resolved, request.environ, mimetype=mimetype, etag=etag, conditional=True,
                             max_age=31536000)
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["Vary"] = "Accept-Encoding"
    response.headers.update(CORS_HEADERS)
    return response


def _gzipped(request: Request, path: Path, sha: str, relative: str, etag: str) -> Response:
    body = _GZIPPED.get((sha, relative))
    if body is None:
        body = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
        _GZIPPED.put((sha, relative), body)
    response = Response(body, mimetype="application/json")
    response.headers["Content-Encoding"] = "gzip"
    response.set_etag(f"{etag}-gzip")  # another representation, another strong ETag
    return response.make_conditional(request)


def safe_parts(path: str) -> list[str]:
    """The segments of a requested file path, refusing anything that could leave the version's folder.

    Raises
    ------
    BadRequest
        An absolute path, an empty, ``.`` or ``..`` segment, a NUL, a backslash or a control character.
    """
    if not path or path.startswith("/") or any(c == "\\" or ord(c) < 32 for c in path):
        raise BadRequest("invalid file path in the tileset URL")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BadRequest("invalid file path in the tileset URL")
    return parts


def tileset_extent(tileset_json: Path, sha: str) -> list[float] | None:
    """The CRS84 bbox of a tileset's root bounding volume (region, or box in ECEF), or None."""
    cached = _EXTENTS.get(sha)
    if cached is not None:
        return cached or None
    try:
        root = json.loads(tileset_json.read_text(encoding="utf-8"))["root"]
        bbox = _volume_bbox(root["boundingVolume"], root.get("transform"))
    except (OSError, ValueError, KeyError, TypeError):
        bbox = None
    _EXTENTS.put(sha, bbox or [])
    return bbox


def _volume_bbox(volume: dict[str, Any], transform: list[float] | None) -> list[float] | None:
    import numpy as np

    if "region" in volume:
        west, south, east, north = (math.degrees(v) for v in volume["region"][:4])
        return [west, south, east, north]
    if "box" not in volume:
        return None
    box = np.asarray(volume["box"], dtype=float)
    center, axes = box[:3], box[3:].reshape(3, 3)
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
    corners = center + signs @ axes
    if transform is not None:
        matrix = np.asarray(transform, dtype=float).reshape(4, 4).T  # column-major in 3D Tiles
        corners = (np.c_[corners, np.ones(len(corners))] @ matrix.T)[:, :3]
    if np.linalg.norm(corners[0]) < 6.0e6:  # not ECEF (a local frame without transform): no geographic extent
        return None
    from pyproj import Transformer

    lon, lat, _ = Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True).transform(*corners.T)
    return [float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat))]
