"""What every delivery route shares: the visibility seam, OGC exception bodies, CORS, cached versions.

A route never decides by itself whether a caller may see a layer: it asks
:meth:`Delivery.layer`, which the app wires to :func:`server.access.can_see`.
Everything a caller may not see, or that does not exist, or whose id is not
even a layer id, gets the one :func:`not_found` answer, byte for byte.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable

from werkzeug.wrappers import Request, Response

from gis.records import Layer, Version
from gis.errors import LayerNotFound, LuteceError

log = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, X-API-Key, Range, If-None-Match, Accept-Encoding",
    "Access-Control-Expose-Headers": "ETag, Content-Range, Content-Length, Content-Encoding, Accept-Ranges",
    "Access-Control-Max-Age": "86400",
}
NOT_FOUND_DESCRIPTION = "Collection not found"


class BadRequest(LuteceError, ValueError):
    """A parameter of a request is unusable (answered 400 with an OGC exception)."""

    http_status = 400
    ogc_code = "InvalidParameterValue"


class NotFound(LuteceError, LookupError):
    """Something under a visible layer that does not exist (a file, a record, a tile matrix set)."""

    http_status = 404
    ogc_code = "NotFound"


def ogc_error(status: int, code: str, description: str) -> Response:
    """An OGC API exception body, as pygeoapi writes it (``code``, ``type``, ``description``)."""
    body = json.dumps({"code": code, "type": code, "description": description})
    response = Response(body, status=status, mimetype="application/json")
    response.headers.update(CORS_HEADERS)
    return response


def not_found() -> Response:
    """The one answer for an unknown, unseen or malformed collection id (it names no id)."""
    return ogc_error(404, "NotFound", NOT_FOUND_DESCRIPTION)


def error_response(error: LuteceError) -> Response:
    """The OGC exception of one of our errors (its message is user-safe by construction)."""
    if isinstance(error, LayerNotFound):
        return not_found()
    status = error.http_status if 400 <= error.http_status < 600 else 500
    return ogc_error(status, error.ogc_code, error.message)


def json_response(document: Any, mimetype: str = "application/json", status: int = 200) -> Response:
    response = Response(json.dumps(document, ensure_ascii=False), status=status, mimetype=mimetype)
    response.headers.update(CORS_HEADERS)
    return response


class LRU:
    """A small thread-safe least-recently-used cache (values are immutable: bytes, records)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass
class Delivery:
    """What the delivery routes need from the app.

    Parameters
    ----------
    catalog
        Returns the process's open :class:`~gis.catalog.service.Catalog`.
    visible_layer
        ``(request, layer_id) -> Layer | None``: the layer as it is now when
        the caller of ``request`` may see it, else ``None`` (unknown, unseen,
        withdrawn). The app builds it from :func:`server.access.can_see`.
    tile_cache
        The folder of vector tiles shared by the workers (None: memory only).
    """

    catalog: Callable[[], Any]
    visible_layer: Callable[[Request, str], Layer | None]
    tile_cache: Path | None = None
    _versions: LRU = field(default_factory=lambda: LRU(512))
    _caches: dict[str, Any] = field(default_factory=dict)

    def cache(self, name: str, factory: Callable[[], Any]) -> Any:
        """A cache of this app's (``name``), made by ``factory`` on first use."""
        cache = self._caches.get(name)
        if cache is None:
            cache = self._caches.setdefault(name, factory())
        return cache

    def layer(self, request: Request, layer_id: str, kinds: tuple[str, ...] | None = None) -> Layer | None:
        """The layer when the caller may see it (and it is served: a current version, of one of ``kinds``)."""
        layer = self.visible_layer(request, layer_id)
        if layer is None or layer.current_version is None:  # withdrawn: nothing to serve
            return None
        if kinds is not None and layer.kind not in kinds:
            return None
        return layer

    def version(self, layer: Layer, number: int | None = None) -> Version:
        """A version of ``layer`` (its current one by default); versions are immutable, so they are cached."""
        number = layer.current_version if number is None else number
        key = (layer.id, number)
        version = self._versions.get(key)
        if version is None:
            version = self.catalog().backend.get_version(layer.id, number)
            self._versions.put(key, version)
        return version

    def retained(self, layer: Layer) -> list[Version]:
        """The retained versions of ``layer`` (cached while the layer's row is unchanged)."""
        key = ("retained", layer.id, layer.revision, layer.current_version)
        versions = self._versions.get(key)
        if versions is None:
            versions = self.catalog().backend.list_versions(layer.id)
            self._versions.put(key, versions)
        return versions


def base_url(request: Request) -> str:
    """The URL of the app's root as the client sees it (no trailing slash)."""
    return request.host_url.rstrip("/") + request.script_root.rstrip("/")


def wants_gzip(request: Request) -> bool:
    """Whether the client accepts gzip (``gzip`` or ``*`` with a quality above 0; not ``identity``, ``gzip;q=0``)."""
    return request.accept_encodings["gzip"] > 0
