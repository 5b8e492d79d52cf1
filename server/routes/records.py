"""The catalog as OGC API Records: one record per layer the caller may see.

Routes::

    /collections/catalog_records                 the records collection (itemType ``record``)
    /collections/catalog_records/items           records: ``q`` (text), ``bbox`` (CRS84), ``limit``, ``offset``
    /collections/catalog_records/items/ID        the record of layer ID

The collection's id is not a layer id (an underscore is not allowed in a
slug), so no layer can hide it. A record says what the public may know of a
layer: its catalogue metadata, licence, access level, CRS84 extent, current
version and a lineage summary, all from :mod:`gis.catalog.public` (the full
lineage holds absolute paths and ``user@host``: it is never served). The
record of a layer the caller may not see answers as a record that does not exist.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from server.providers.coverage import parse_bbox
from server.routes.http import BadRequest, Delivery, NotFound, base_url, json_response

COLLECTION = "catalog_records"
DEFAULT_LIMIT, MAX_LIMIT = 10, 100
RECORD_CORE = "http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"
GEOJSON = "application/geo+json"

RULES = Map([
    Rule(f"/collections/{COLLECTION}", endpoint="collection"),
    Rule(f"/collections/{COLLECTION}/items", endpoint="items"),
    Rule(f"/collections/{COLLECTION}/items/<path:record>", endpoint="item"),
], strict_slashes=False, merge_slashes=False)


def handle(delivery: Delivery, request: Request, endpoint: str, record: str | None = None) -> Response:
    if endpoint == "collection":
        return json_response(collection_document(request))
    if endpoint == "item":
        layer = delivery.layer(request, record)
        if layer is None:
            raise NotFound("record not found")
        return json_response(layer_record(delivery, request, layer), GEOJSON)
    return json_response(search(delivery, request), GEOJSON)


def collection_document(request: Request) -> dict[str, Any]:
    """The records collection, as a listing of collections shows it."""
    root = f"{base_url(request)}/collections/{COLLECTION}"
    return {"id": COLLECTION, "title": "Catalogue des couches", "itemType": "record",
            "description": "Une fiche par couche publiée : licence, niveau d'accès, emprise, version, lignée",
            "links": [{"rel": "self", "type": "application/json", "href": root},
                      {"rel": "items", "type": GEOJSON, "href": f"{root}/items"}]}


def search(delivery: Delivery, request: Request) -> dict[str, Any]:
    """The records of the layers the caller may see, filtered by ``q`` and ``bbox``, one page of them."""
    args = request.args
    limit, offset = _whole(args, "limit", DEFAULT_LIMIT), _whole(args, "offset", 0)
    if limit < 1 or offset < 0:
        raise BadRequest("limit must be 1 or more (larger ones are clamped to 100), offset 0 or more")
    limit = min(limit, MAX_LIMIT)
    words = [w for w in (args.get("q") or "").lower().replace(",", " ").split() if w]
    box = parse_bbox(args["bbox"], "OGC:CRS84") if "bbox" in args else None
    matched = []
    for listed in delivery.catalog().layers():
        layer = delivery.layer(request, listed.id)  # the visibility rule decides, layer by layer
        if layer is None or not _matches(layer, words):
            continue
        if box is not None and not _meets(_extent_crs84(layer), box):
            continue
        matched.append(layer)
    page = matched[offset:offset + limit]
    root = f"{base_url(request)}/collections/{COLLECTION}/items"
    links = [{"rel": "self", "type": GEOJSON, "href": _page_url(root, args, offset, limit)}]
    if offset + limit < len(matched):
        links.append({"rel": "next", "type": GEOJSON, "href": _page_url(root, args, offset + limit, limit)})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON, "href": _page_url(root, args, max(offset - limit, 0), limit)})
    return {"type": "FeatureCollection", "features": [layer_record(delivery, request, layer) for layer in page],
            "numberMatched": len(matched), "numberReturned": len(page), "links": links}


def layer_record(delivery: Delivery, request: Request, layer) -> dict[str, Any]:
    """The record of one (visible) layer."""
    from gis.catalog.public import public_layer, public_version

    public = public_layer(layer)
    version = public_version(delivery.version(layer))
    extent = _extent_crs84(layer)
    root = f"{base_url(request)}/collections"
    properties = {
        "type": "dataset", "title": public["title"], "description": public["description"],
        "keywords": public["keywords"], "language": "fr",
        "themes": [{"concepts": [{"id": public["theme"]}], "scheme": "lutece"}] if public["theme"] else [],
        "license": public["licence"], "rights": _rights(public["access"]),
        "created": public["created"], "updated": public["updated"],
        "contacts": [{"organization": public["producer"], "roles": ["producer"]}] if public["producer"] else [],
        "lutece:kind": public["kind"], "lutece:access": public["access"], "lutece:crs": public["crs"],
        "lutece:updateFrequency": public["update_frequency"],
        "lutece:version": {key: version[key] for key in ("number", "sha256", "published", "features", "note")},
        "lutece:lineage": lineage_summary(version["lineage"]),
    }
    if public["title_en"]:
        properties["lutece:title_en"] = public["title_en"]
    links = [{"rel": "self", "type": GEOJSON, "href": f"{root}/{COLLECTION}/items/{layer.id}"},
             {"rel": "collection", "type": "application/json", "href": f"{root}/{COLLECTION}"},
             {"rel": "describes", "type": "application/json", "href": f"{root}/{layer.id}", "title": public["title"]}]
    if public["licence_uri"]:
        links.append({"rel": "license", "href": public["licence_uri"], "title": public["licence"]})
    links += data_links(request, layer, delivery)
    return {"id": layer.id, "type": "Feature", "conformsTo": [RECORD_CORE],
            "geometry": _polygon(extent) if extent else None,
            "time": {"interval": [public["created"] or "..", public["updated"] or ".."]},
            "properties": properties, "links": links}


def lineage_summary(lineage: dict[str, Any]) -> dict[str, Any]:
    """A short account of a public lineage: pipeline, inputs (names and checksums), stage types, software."""
    summary: dict[str, Any] = {}
    for key in ("pipeline", "created"):
        if lineage.get(key):
            summary[key] = lineage[key]
    if lineage.get("inputs"):
        summary["inputs"] = lineage["inputs"]
    if lineage.get("stages"):
        summary["stages"] = [stage.get("type") for stage in lineage["stages"] if stage.get("type")]
    if lineage.get("software"):
        summary["software"] = lineage["software"]
    return summary


def data_links(request: Request, layer, delivery: Delivery) -> list[dict[str, Any]]:
    """Where the layer's data is served, by kind."""
    root = f"{base_url(request)}/collections/{layer.id}"
    if layer.kind == "vector":
        return [{"rel": "items", "type": GEOJSON, "href": f"{root}/items", "title": "Features"},
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "type": "application/json",
                 "href": f"{root}/tiles", "title": "Vector tiles"}]
    if layer.kind == "raster":
        return [{"rel": "http://www.opengis.net/def/rel/ogc/1.0/coverage", "type": "image/tiff; application=geotiff",
                 "href": f"{root}/coverage", "title": "Coverage"},
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/map", "type": "image/png", "href": f"{root}/map",
                 "title": "Map preview"}]
    if layer.kind == "cityjson":
        from server.routes.cityjson import request_links

        return request_links(delivery, request, layer)
    return [{"rel": "original", "type": "application/json+3dtiles", "href": f"{root}/3dtiles",
             "title": "3D Tiles tileset"}]


def _rights(access: str) -> str:
    return {"open": "Données ouvertes : accessibles à tous", "shared": "Partagées : partenaires munis d'une clé"}.get(
        access, access)


def _matches(layer, words: list[str]) -> bool:
    if not words:
        return True
    text = " ".join([layer.id, layer.title, layer.description, layer.title_en or "", layer.description_en or "",
                     " ".join(layer.keywords), layer.theme or ""]).lower()
    return all(word in text for word in words)


def _extent_crs84(layer) -> tuple[float, float, float, float] | None:
    if layer.extent is None or not layer.crs:
        return None
    from pyproj import Transformer

    try:
        transformer = Transformer.from_crs(layer.crs, "OGC:CRS84", always_xy=True)
        bounds = transformer.transform_bounds(*layer.extent, densify_pts=21)
    except Exception:  # a CRS pyproj cannot place on the globe: no geographic extent
        return None
    return tuple(bounds) if all(math.isfinite(v) for v in bounds) else None


def _meets(extent, box) -> bool:
    return extent is not None and not (extent[2] < box.minx or extent[0] > box.maxx or extent[3] < box.miny
                                       or extent[1] > box.maxy)


def _polygon(extent) -> dict[str, Any]:
    west, south, east, north = extent
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


def _whole(args, name: str, default: int) -> int:
    if name not in args:
        return default
    try:
        value = float(args[name])
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None
    if not math.isfinite(value) or value != int(value):
        raise BadRequest(f"{name} must be a whole number")
    return int(min(value, 10 ** 9))


def _page_url(root: str, args, offset: int, limit: int) -> str:
    query = [(k, v) for k, v in args.items(multi=True) if k not in ("offset", "limit")]
    return f"{root}?{urlencode(query + [('limit', limit), ('offset', offset)])}"
