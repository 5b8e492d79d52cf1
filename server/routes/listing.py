"""What the delivery routes add to pygeoapi's collection listings (JSON): the records collection, tile links.

pygeoapi describes the collections of the caller's view; it does not know
our vector tiles nor the records collection. This registrar adds, to the JSON
of ``/collections`` and ``/collections/ID`` (never to an error):

- the ``catalog_records`` collection (``itemType: record``) to the listing,
  so that a Records client (OWSLib's ``records()``) finds it;
- the vector-tiles link to each features collection the caller sees (its
  presence in pygeoapi's answer already says the caller may see it);
- to a terrain (DTM) raster, the CRSs its coverage answers in (``crs``, with
  EPSG:4979: heights above the ellipsoid, for 3D globes) and a CoverageJSON
  link, so that a 3D client finds the terrain without knowing the layer's name.
"""

from __future__ import annotations

import json

from flask import Flask, Request, Response, request

from server.routes import records, vtiles
from server.routes.http import base_url


def register(app: Flask, state) -> None:
    """Add the listing hook to ``app`` (a registrar of :data:`server.app.ROUTES`)."""

    @app.after_request
    def _listing(response: Response) -> Response:
        if request.method != "GET" or response.status_code != 200 or response.content_encoding \
                or response.mimetype != "application/json":
            return response
        parts = request.path.strip("/").split("/")
        if parts[0] != "collections" or len(parts) > 2:
            return response
        document = json.loads(response.get_data())
        if len(parts) == 1:
            for collection in document.get("collections", []):
                _add_tile_links(request, collection)
                _add_terrain(request, collection)
            document.setdefault("collections", []).append(records.collection_document(request))
        else:
            _add_tile_links(request, document)
            _add_terrain(request, document)
        response.set_data(json.dumps(document, ensure_ascii=False))
        return response


def _add_tile_links(request: Request, collection: dict) -> None:
    if collection.get("itemType") != "feature" or "id" not in collection:
        return
    links = collection.setdefault("links", [])
    if not any(link.get("rel", "").endswith("tilesets-vector") for link in links):
        links.extend(vtiles.collection_links(request, _Layer(collection["id"])))


def _add_terrain(request: Request, collection: dict) -> None:
    from server.app import current_view
    from server.providers import coverage

    layer = current_view().layer(collection.get("id", ""))
    if layer is None or layer.kind != "raster" or not coverage.is_terrain(layer):
        return
    native = coverage.crs_uri(layer.crs or "EPSG:2154")
    collection["crs"] = [uri for uri in (native, coverage.CRS84, coverage.ELLIPSOIDAL_URI) if uri]
    collection["lutece:heights"] = {"values": "orthometric", "geoid": coverage.geoid_name(),
                                    "ellipsoidal": f"coverage with crs={coverage.ELLIPSOIDAL_URI}"}
    collection.setdefault("links", []).append({
        "rel": "http://www.opengis.net/def/rel/ogc/1.0/coverage", "type": coverage.COVERAGE_JSON,
        "title": "Heights (CoverageJSON)",
        "href": f"{base_url(request)}/collections/{layer.id}/coverage?f=covjson"})


class _Layer:
    """The little of a layer that :func:`server.routes.vtiles.collection_links` reads."""

    def __init__(self, layer_id: str) -> None:
        self.id = layer_id
