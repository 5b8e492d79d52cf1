"""OGC API Tiles for vector layers: WebMercatorQuad tilesets of Mapbox Vector Tiles.

Routes (``ID`` a vector layer)::

    /collections/ID/tiles                                   the tilesets of the collection (one)
    /collections/ID/tiles/WebMercatorQuad                   the tileset's metadata
    /collections/ID/tiles/WebMercatorQuad/{z}/{y}/{x}       one tile (tileMatrix/tileRow/tileCol)

A tile URL does not name the version, so tiles are not ``immutable``: they
carry a strong ETag made of the version's sha256 and the tile, and
``Cache-Control: no-cache`` so that a client revalidates (a 304 costs
nothing) and sees a new version at once. Tiles are gzipped when the client
accepts it.
"""

from __future__ import annotations

import gzip
import hashlib

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from server.providers import mvt
from server.routes.http import CORS_HEADERS, LRU, BadRequest, Delivery, base_url, json_response, not_found, wants_gzip

KINDS = ("vector",)
TMS = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
TILE_TEMPLATE = "{tileMatrix}/{tileRow}/{tileCol}"

RULES = Map([
    Rule("/collections/<collection>/tiles", endpoint="tilesets"),
    Rule("/collections/<collection>/tiles/<tms>", endpoint="tileset"),
    Rule("/collections/<collection>/tiles/<tms>/<z>/<y>/<x>", endpoint="tile"),
], strict_slashes=False, merge_slashes=False)



def handle(delivery: Delivery, request: Request, endpoint: str, collection: str, **args: str) -> Response:
    layer = delivery.layer(request, collection, KINDS)
    if layer is None:
        return not_found()
    if endpoint == "tilesets":
        return json_response({"links": _links(request, layer.id), "tilesets": [tileset_summary(request, layer)]})
    if args["tms"] != TMS:
        raise BadRequest(f"unknown tile matrix set; this server offers {TMS}")
    if endpoint == "tileset":
        return json_response(tileset_document(request, layer))
    tile = mvt.TileId.parse(args["z"], args["y"], args["x"])
    version = delivery.version(layer)
    data = delivery.cache("mvt", lambda: mvt.TileCache(folder=delivery.tile_cache)).get_or_build(version, tile, lambda v, t: build_tile(delivery, v, t))
    return tile_response(request, version, tile, data, delivery.cache("mvt-gzip", lambda: LRU(2048)))


def build_tile(delivery: Delivery, version, tile: mvt.TileId) -> bytes:
    """The tile from the store, by the backend's own means."""
    backend = delivery.catalog().backend
    if backend.name == "postgis":
        return mvt.postgis_tile(backend.dsn, version, tile)
    return mvt.gpkg_tile(backend.gpkg, version, tile)


def tile_response(request: Request, version, tile: mvt.TileId, data: bytes, gzipped: LRU) -> Response:
    etag = hashlib.sha256(f"{version.checksum}/{tile.z}/{tile.y}/{tile.x}".encode()).hexdigest()[:40]
    if data and wants_gzip(request):
        key = (version.checksum, tile)
        body = gzipped.get(key)
        if body is None:
            body = gzip.compress(data, compresslevel=5, mtime=0)
            gzipped.put(key, body)
        response = Response(body, mimetype=mvt.MEDIA_TYPE)
        response.headers["Content-Encoding"] = "gzip"
        response.set_etag(f"{etag}-gzip")
    else:
        response = Response(data, mimetype=mvt.MEDIA_TYPE)
        response.set_etag(etag)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers.update(CORS_HEADERS)
    return response.make_conditional(request)


def collection_links(request: Request, layer) -> list[dict]:
    """Links that a collection's document or listing adds to a vector layer."""
    root = f"{base_url(request)}/collections/{layer.id}/tiles"
    return [{"rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "type": "application/json",
             "title": "Vector tilesets", "href": root}]


def tileset_summary(request: Request, layer) -> dict:
    root = f"{base_url(request)}/collections/{layer.id}/tiles/{TMS}"
    return {"title": layer.title, "dataType": "vector", "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            "tileMatrixSetURI": TMS_URI,
            "links": [{"rel": "self", "type": "application/json", "href": root},
                      {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": "application/json",
                       "href": f"{base_url(request)}/TileMatrixSets/{TMS}"},
                      {"rel": "item", "type": mvt.MEDIA_TYPE, "templated": True,
                       "href": f"{root}/{TILE_TEMPLATE}"}]}


def tileset_document(request: Request, layer) -> dict:
    document = tileset_summary(request, layer)
    document.update({"id": TMS, "minzoom": 0, "maxzoom": mvt.MAX_ZOOM,
                     "layers": [{"id": layer.id, "title": layer.title, "dataType": "vector"}]})
    return document


def _links(request: Request, layer_id: str) -> list[dict]:
    return [{"rel": "self", "type": "application/json",
             "href": f"{base_url(request)}/collections/{layer_id}/tiles"}]

