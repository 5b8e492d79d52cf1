"""The OGC API core routes: landing page, conformance, OpenAPI, collections, Features items, queryables, schema.

Each handler runs pygeoapi's own function on the caller's view
(:func:`server.app.current_view`), whose resources are only the layers the
caller may see: an unseen layer is missing from pygeoapi's configuration and
gets pygeoapi's own "Collection not found", byte for byte the answer for a
layer that does not exist.
"""

from __future__ import annotations

import re

from flask import Flask, Response, request

from server.app import ServerState, current_view, ogc_exception


def run_current(api_function, *args, skip_valid_check: bool = False) -> Response:
    """:func:`run`, once more on a fresh snapshot when the version read was just pruned (a stale worker)."""
    from flask import g

    from server.providers.features import VersionGone

    response = run(api_function, *args, skip_valid_check=skip_valid_check)
    if response.status_code == 503 and VersionGone.default_msg.encode() in response.get_data():
        g.lutece_state.follower.poll()
        g.lutece_view = None
        response = run(api_function, *args, skip_valid_check=skip_valid_check)
    return response


def run(api_function, *args, skip_valid_check: bool = False) -> Response:
    """Run a pygeoapi API function on the caller's view and wrap its (headers, status, content)."""
    from pygeoapi.api import APIRequest, apply_gzip

    view = current_view()
    api_request = APIRequest.from_flask(request, view.api.locales)
    if not skip_valid_check and not api_request.is_valid():
        headers, status, content = view.api.get_format_exception(api_request)
    else:
        headers, status, content = api_function(view.api, api_request, *args)
        content = apply_gzip(headers, content)
    return Response(content, status, headers)


_COUNTS = re.compile(rb'"numberMatched":(\d+),"numberReturned":(\d+)')


def _drop_last_next_link(response: Response) -> Response:
    """pygeoapi links a "next" page whenever a page is full, even the last one; drop it when nothing follows."""
    import json

    if response.status_code != 200 or response.mimetype not in ("application/json", "application/geo+json") \
            or response.content_encoding:
        return response
    data = response.get_data()
    counts = _COUNTS.search(data, max(0, len(data) - 4096)) or _COUNTS.search(data)
    offset = request.args.get("offset", "0")
    if counts is None or b'"rel":"next"' not in data or not offset.isdigit() \
            or int(offset) + int(counts.group(2)) < int(counts.group(1)):
        return response  # the usual case: decided without parsing the page
    page = json.loads(data)
    page["links"] = [link for link in page.get("links", []) if link.get("rel") != "next"]
    response.set_data(json.dumps(page, ensure_ascii=False, separators=(",", ":")))
    return response


def register(app: Flask, state: ServerState) -> None:
    """Add the core OGC API routes to ``app``."""
    import pygeoapi.api as core
    import pygeoapi.api.coverages as coverages
    import pygeoapi.api.itemtypes as itemtypes
    import pygeoapi.api.tiles as tiles

    def landing_page():
        return run(core.landing_page)

    def conformance():
        return run(core.conformance)

    def openapi():
        view = current_view()
        view.api.openapi = view.openapi()
        return run(core.openapi_)

    def collections(collection_id=None):
        return run(core.describe_collections, collection_id)

    def schema(collection_id):
        return run(core.get_collection_schema, collection_id)

    def queryables(collection_id):
        return run(itemtypes.get_collection_queryables, collection_id)

    def items(collection_id):
        if request.method == "POST":
            if request.mimetype not in ("application/json", "application/query-cql-json", ""):
                return ogc_exception(415, "InvalidParameterValue",
                                     "POST a CQL2 JSON filter (application/query-cql-json)")
        return _drop_last_next_link(run_current(itemtypes.get_collection_items, collection_id,
                                                skip_valid_check=True))

    def item(collection_id, item_id):
        return run_current(itemtypes.get_collection_item, collection_id, item_id)

    def coverage(collection_id):
        return run(coverages.get_collection_coverage, collection_id, skip_valid_check=True)

    def tile_matrix_sets():
        return run(tiles.tilematrixsets)

    def tile_matrix_set(tile_matrix_set_id):
        return run(tiles.tilematrixset, tile_matrix_set_id)

    app.add_url_rule("/", "landing_page", landing_page)
    app.add_url_rule("/conformance", "conformance", conformance)
    app.add_url_rule("/openapi", "openapi", openapi)
    app.add_url_rule("/collections", "collections", collections)
    app.add_url_rule("/collections/<collection_id>", "collection", collections)
    app.add_url_rule("/collections/<collection_id>/schema", "collection_schema", schema)
    app.add_url_rule("/collections/<collection_id>/queryables", "collection_queryables", queryables)
    app.add_url_rule("/collections/<collection_id>/items", "collection_items", items, methods=["GET", "POST"])
    app.add_url_rule("/collections/<collection_id>/items/<item_id>", "collection_item", item)
    app.add_url_rule("/collections/<collection_id>/coverage", "collection_coverage", coverage)
    app.add_url_rule("/TileMatrixSets", "tile_matrix_sets", tile_matrix_sets)
    app.add_url_rule("/TileMatrixSets/<tile_matrix_set_id>", "tile_matrix_set", tile_matrix_set)

    @app.route("/healthz")
    def healthz():
        import json

        health = state.follower.health()
        ok = health["store"] == "ok"
        health["status"] = "ok" if ok else "unavailable"
        return Response(json.dumps(health), 200 if ok else 503, {"Content-Type": "application/json",
                                                                 "Cache-Control": "no-store"})
