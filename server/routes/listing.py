"""What the delivery routes add to pygeoapi's collection listings (JSON): the records collection, tile links.

pygeoapi describes the collections of the caller's view; it does not know
our vector tiles nor the records collection. This registrar adds, to the JSON
of ``/collections`` and ``/collections/ID`` (never to an error):

- the ``catalog_records`` collection (``itemType: record``) to the listing,
  so that a Records client (OWSLib's ``records()``) finds it;
- the vector-tiles link to each features collection the caller sees (its
  presence in pygeoapi's answer already says the caller may see it).
"""

from __future__ import annotations

import json

from flask import Flask, Request, Response, request

from server.routes import records, vtiles


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
            document.setdefault("collections", []).append(records.collection_document(request))
        else:
            _add_tile_links(request, document)
        response.set_data(json.dumps(document, ensure_ascii=False))
        return response


def _add_tile_links(request: Request, collection: dict) -> None:
    if collection.get("itemType") != "feature" or "id" not in collection:
        return
    links = collection.setdefault("links", [])
    if not any(link.get("rel", "").endswith("tilesets-vector") for link in links):
        links.extend(vtiles.collection_links(request, _Layer(collection["id"])))


class _Layer:
    """The little of a layer that :func:`server.routes.vtiles.collection_links` reads."""

    def __init__(self, layer_id: str) -> None:
        self.id = layer_id
