"""The OpenAPI document of one caller's view, self-contained.

pygeoapi generates it from the view's configuration (so it names only the
collections the caller may see) with ``$ref``s into the OGC schemas on
schemas.opengis.net. A client without that site (an air-gapped desktop, the
tests) could not resolve them, so every remote reference is replaced by a
local definition: the OGC parameters the server takes, and permissive
response schemas (an object; GeoJSON for features).
"""

from __future__ import annotations

import copy
from typing import Any

_OBJECT = {"type": "object"}
_EXCEPTION = {"type": "object", "required": ["code"],
              "properties": {"code": {"type": "string"}, "description": {"type": "string"}}}
_LOCAL_PARAMETERS: dict[str, dict[str, Any]] = {
    "featureId": {"name": "featureId", "in": "path", "required": True, "description": "Feature id",
                  "schema": {"type": "string"}},
    "datetime": {"name": "datetime", "in": "query", "required": False, "style": "form", "explode": False,
                 "schema": {"type": "string"}},
    "sortby": {"name": "sortby", "in": "query", "required": False, "style": "form", "explode": False,
               "schema": {"type": "array", "items": {"type": "string", "pattern": "^[+-]?[A-Za-z_].*$"}}},
    "q": {"name": "q", "in": "query", "required": False, "style": "form", "explode": False,
          "schema": {"type": "array", "items": {"type": "string"}}},
    "filter": {"name": "filter", "in": "query", "required": False, "schema": {"type": "string"}},
    "filter-lang": {"name": "filter-lang", "in": "query", "required": False,
                    "schema": {"type": "string", "enum": ["cql-text", "cql-json"]}},
    "filter-crs": {"name": "filter-crs", "in": "query", "required": False, "schema": {"type": "string"}},
}


def _response(description: str, schema: dict, media: str = "application/json") -> dict:
    return {"description": description, "content": {media: {"schema": schema}}}


def _remote_response(name: str) -> dict:
    if name in ("Features", "Feature"):
        return _response(name, _OBJECT, "application/geo+json")
    if name in ("InvalidParameter", "NotFound", "ServerError", "NotAcceptable"):
        return _response(name, _EXCEPTION)
    return _response(name, _OBJECT)


def _localise(node: Any) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            last = ref.rstrip("/").split("/")[-1].removesuffix(".yaml")
            if "/parameters" in ref or ref.endswith("/parameters/" + last + ".yaml"):
                return copy.deepcopy(_LOCAL_PARAMETERS.get(last, {"name": last, "in": "query", "required": False,
                                                                   "schema": {"type": "string"}}))
            if "/responses" in ref:
                return _remote_response(last)
            return dict(_OBJECT)  # a schema
        return {key: _localise(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_localise(value) for value in node]
    return node


def openapi_document(config: dict) -> dict:
    """The OpenAPI 3.0 document of a pygeoapi configuration, with no remote reference."""
    from pygeoapi.openapi import get_oas

    document = _localise(get_oas(config, fail_on_invalid_collection=False))
    for path in [p for p in document.get("paths", {}) if p.startswith(("/jobs", "/processes"))]:
        del document["paths"][path]  # pygeoapi's processes: not served here
    _add_filter_parameters(document)
    _add_alternate_media_types(document)
    _add_cityjson_paths(document, config)
    return document


def _add_cityjson_paths(document: dict, config: dict) -> None:
    """Declare the CityJSON file of each CityJSON collection of the view (pygeoapi knows nothing of it)."""
    for name, resource in (config.get("resources") or {}).items():
        if not any(provider.get("type") == "cityjson" for provider in resource.get("providers", [])):
            continue
        document.setdefault("paths", {})[f"/collections/{name}/cityjson"] = {"get": {
            "summary": f"CityJSON 2.0 file of {resource.get('title', name)}",
            "description": ("The current version's CityJSON 2.0 file (strong ETag: its sha256, with -gzip "
                            "when gzipped for an Accept-Encoding: gzip; ranges served, uncompressed)."),
            "tags": [name], "operationId": f"getCityJSON.{name}",
            "responses": {
                "200": _response("The CityJSON 2.0 file", _OBJECT, "application/city+json"),
                "304": {"description": "Not modified (If-None-Match, If-Modified-Since)"},
                "404": _response("Not found", _EXCEPTION),
            }}}


#: Every JSON-ish answer can also be asked as HTML (f=html) and pygeoapi gives some their own JSON types.
_ALTERNATES = ("application/json", "application/geo+json", "application/ld+json", "application/schema+json",
               "text/html")


def _add_alternate_media_types(document: dict) -> None:
    """Declare the media types the server also answers with (``f=html``, ``f=jsonld``, JSON Schema, GeoJSON)."""
    responses = list(document.get("components", {}).get("responses", {}).values())
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                responses += [r for r in operation.get("responses", {}).values() if isinstance(r, dict)]
    for response in responses:
        content = response.get("content")
        if not content or not any(media in content for media in _ALTERNATES):
            continue  # images, GeoTIFF, OpenAPI itself: one type each
        for media in _ALTERNATES:
            content.setdefault(media, {"schema": {}})


def _add_filter_parameters(document: dict) -> None:
    """Declare the CQL2 ``filter`` parameters on every items path (pygeoapi leaves them out)."""
    for path, operations in document.get("paths", {}).items():
        if path.endswith("/items") and "get" in operations:
            parameters = operations["get"].setdefault("parameters", [])
            names = {p.get("name") for p in parameters if isinstance(p, dict)}
            for name in ("filter", "filter-lang", "filter-crs"):
                if name not in names:
                    parameters.append(copy.deepcopy(_LOCAL_PARAMETERS[name]))
