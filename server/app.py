"""The server's WSGI application: ``create_app(config)`` around pygeoapi 0.21's :class:`~pygeoapi.api.API`.

pygeoapi's own ``flask_app`` reads its configuration at import time; this
factory reads nothing at import: it opens the catalog, starts the
:class:`~server.resources.Follower` that keeps the resources and API keys up
to date, and registers the routes.

Per request, the caller is resolved from its key (:func:`server.access.caller_for`)
and gets a :class:`View`: a pygeoapi ``API`` whose resources are ONLY the
layers :func:`server.access.can_see` lets it see (cached per snapshot and set
of visible layers). pygeoapi's own code then answers a hidden layer exactly
as a layer that does not exist, in listings, documents, HTML pages and the
OpenAPI document alike.

Where routes plug in
--------------------
:data:`ROUTES` lists ``"module:function"`` registrars, loaded in order by
:func:`create_app`; each is called as ``register(app, state)`` with the Flask
app and the :class:`ServerState`. A route of another package
(tiles, coverages, 3D Tiles, records) adds its registrar to :data:`ROUTES`
and, in its handlers, calls :func:`current_view` for the caller's view and
``view.collection(layer_id)`` for a layer (None when missing OR hidden: answer
with :func:`not_found`, never anything else). A kind of layer gets its
pygeoapi resource from a builder registered with
:func:`server.resources.register_builder`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Flask, Response, g, request

from server.access import Caller, caller_for
from server.resources import Collection, Follower, Snapshot

log = logging.getLogger(__name__)
access_log = logging.getLogger("lutece.access")

#: Route registrars, ``"module:function"``, called as ``function(app, state)`` in this order.
ROUTES: list[str] = [
    "server.app:register_delivery",  # 3D Tiles, vector tiles, coverages and maps: answered before pygeoapi
    "server.routes.ogc:register",
    "server.routes.listing:register",  # the records collection and vector-tile links in pygeoapi's listings
    "server.routes.viewer:register",  # the web viewer's page and files
]

TEMPLATES = Path(__file__).resolve().parent / "templates"

DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 5000,
    "url": None,  # the public URL of the server; default http://HOST:PORT
    "workers": 2,
    "default_items": 100,
    "max_items": 1000,
    "poll_interval": 1.0,
    "title": "Lutèce : SIG de la ville",
    "description": "Les couches du SIG de la ville en OGC API",
}
_VIEW_CACHE_SIZE = 64


def server_settings(config, overrides: dict | None = None) -> dict[str, Any]:
    """The ``server`` section of the configuration over :data:`DEFAULTS`, then ``overrides``."""
    data = getattr(config, "data", None) or {}
    settings = {**DEFAULTS, **(data.get("server") or {}), **{k: v for k, v in (overrides or {}).items()
                                                              if v is not None}}
    if not settings.get("url"):
        settings["url"] = f"http://{settings['host']}:{settings['port']}"
    settings["url"] = str(settings["url"]).rstrip("/")
    return settings


def pygeoapi_config(settings: dict, resources: dict[str, dict]) -> dict[str, Any]:
    """A complete pygeoapi configuration for ``resources`` (one caller's view)."""
    import pygeoapi

    return {
        "server": {
            "bind": {"host": settings["host"], "port": settings["port"]},
            "url": settings["url"],
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["fr-FR", "en-US"],
            "pretty_print": False,
            "limits": {"default_items": int(settings["default_items"]), "max_items": int(settings["max_items"]),
                       "on_exceed": "throttle"},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    "attribution": "&copy; OpenStreetMap contributors"},
            "templates": {"path": str(TEMPLATES), "static": str(Path(pygeoapi.__file__).parent / "static")},
        },
        "logging": {"level": "WARNING"},
        "metadata": {
            "identification": {"title": settings["title"], "description": settings["description"],
                               "keywords": ["SIG", "ville", "OGC API"], "keywords_type": "theme",
                               "terms_of_service": f"{settings['url']}/", "url": f"{settings['url']}/"},
            "license": {"name": "Licence par couche (voir chaque collection)", "url": f"{settings['url']}/"},
            "provider": {"name": "Lutèce", "url": f"{settings['url']}/"},
            "contact": {"name": "Service SIG", "position": "SIG", "address": "", "city": "", "stateorprovince": "",
                        "postalcode": "", "country": "FR", "phone": "", "fax": "", "email": "",
                        "url": f"{settings['url']}/", "hours": "", "instructions": "", "role": "pointOfContact"},
        },
        "resources": resources,
    }


class _Shared:
    """What every caller seeing the same layers of one snapshot shares: the pygeoapi API and its OpenAPI document."""

    def __init__(self, api) -> None:
        self.api = api
        self._openapi: dict | None = None
        self._lock = threading.Lock()

    def openapi(self) -> dict:
        with self._lock:
            if self._openapi is None:
                from server.openapi import openapi_document

                self._openapi = openapi_document(self.api.config)
            return self._openapi


@dataclass(frozen=True)
class View:
    """What one caller sees of one snapshot: a pygeoapi API over those resources only."""

    caller: Caller
    snapshot: Snapshot
    shared: _Shared

    @property
    def api(self):
        return self.shared.api

    def collection(self, layer_id: str) -> Collection | None:
        """The layer's collection when this caller may see it; None when hidden or missing (answer alike)."""
        return self.snapshot.collection_for(self.caller, layer_id)

    def layer(self, layer_id: str):
        """The layer (any kind) when this caller may see it; None when hidden or missing (answer alike)."""
        return self.snapshot.layer_for(self.caller, layer_id)

    def openapi(self) -> dict:
        """The OpenAPI document of this view (built once per set of visible layers, on first use)."""
        return self.shared.openapi()


class ServerState:
    """What the routes share in one worker: the settings, the follower and the views' cache."""

    def __init__(self, config, settings: dict, follow: bool = True) -> None:
        from gis.catalog.service import Catalog

        self.config = config
        self.settings = settings
        self.follower = Follower(lambda: Catalog.from_config(config, create=False), settings)
        if follow:
            self.follower.start()
        self._views: OrderedDict[tuple, _Shared] = OrderedDict()
        self._lock = threading.Lock()
        self._catalog = None

    def view_for(self, caller: Caller) -> View:
        snapshot = self.follower.snapshot
        visible = snapshot.visible_ids(caller)
        key = (snapshot.generation, snapshot.seq, visible)
        with self._lock:
            shared = self._views.get(key)
            if shared is not None:
                self._views.move_to_end(key)
        if shared is None:
            from pygeoapi.api import API

            resources = {cid: snapshot.collections[cid].resource for cid in sorted(visible)}
            shared = _Shared(API(pygeoapi_config(self.settings, resources), {}))
            with self._lock:
                shared = self._views.setdefault(key, shared)
                while len(self._views) > _VIEW_CACHE_SIZE:
                    self._views.popitem(last=False)
        return View(caller, snapshot, shared)

    def request_catalog(self):
        """This worker's catalog for the request threads (the follower's stays with the follower)."""
        with self._lock:
            if self._catalog is None:
                from gis.catalog.service import Catalog

                self._catalog = Catalog.from_config(self.config, create=False)
            return self._catalog

    def close(self) -> None:
        from server.providers.features import close_pools

        self.follower.stop()
        if self._catalog is not None:
            self._catalog.close()
        close_pools()


def current_view() -> View:
    """The view of the request being served (its caller resolved once per request)."""
    view = g.get("lutece_view")
    if view is None:
        state: ServerState = g.lutece_state
        view = g.lutece_view = state.view_for(caller_for(request.headers, state.follower.keyring))
    return view


def ogc_exception(status: int, code: str, description: str) -> Response:
    """An OGC API exception as JSON (HTML when asked with ``f=html``), as pygeoapi writes it."""
    from pygeoapi.api import APIRequest

    view = current_view()
    api_request = APIRequest.from_flask(request, view.api.locales)
    fmt = api_request.format if api_request.format in ("html", "json") else "json"
    headers = api_request.get_response_headers(**view.api.api_headers)
    headers, status, content = view.api.get_exception(status, headers, fmt, code, description)
    return Response(content, status, headers)


def not_found() -> Response:
    """THE answer for a collection that does not exist or that the caller may not see."""
    return ogc_exception(404, "NotFound", "Collection not found")


def _load(target: str):
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def create_app(config=None, settings: dict | None = None, follow: bool = True) -> Flask:
    """The WSGI application serving the catalog of ``config`` (a :class:`gis.config.Config`).

    Parameters
    ----------
    config
        The Lutèce configuration (its ``store`` and optional ``server`` sections);
        default: ``lutece.yml`` as :func:`gis.config.load_config` finds it.
    settings
        Overrides of the ``server`` settings (host, port, url, max_items, ...).
    follow
        Follow the catalog's change feed in a thread (tests may poll by hand).
    """
    from gis.config import load_config

    config = config if config is not None else load_config(None)
    logging.getLogger("pygeoapi").setLevel(logging.CRITICAL)  # its errors are answered as OGC exceptions
    from server import patches

    patches.install()
    state = ServerState(config, server_settings(config, settings), follow=follow)
    app = Flask(__name__, static_folder=None)
    app.url_map.strict_slashes = False
    app.extensions["lutece"] = state
    _install_hooks(app, state)
    for target in ROUTES:
        _load(target)(app, state)
    return app


def tile_cache_folder(state: ServerState) -> Path | None:
    """``server.tile_cache`` (null: memory only), by default ``cache/tiles`` in the store's folder."""
    if "tile_cache" in state.settings:
        folder = state.settings["tile_cache"]
        return Path(folder) if folder else None
    return Path(state.config.store.get("path", "city")) / "cache" / "tiles"


def register_delivery(app: Flask, state: ServerState) -> None:
    """The delivery routes (:mod:`server.routes.delivery`), asked first, with the caller's visibility."""
    from server.routes.delivery import DeliveryRoutes
    from server.routes.http import Delivery

    routes = DeliveryRoutes(Delivery(catalog=state.request_catalog,
                                     visible_layer=lambda _request, layer_id: current_view().layer(layer_id),
                                     tile_cache=tile_cache_folder(state)))

    @app.before_request
    def _delivery():
        return routes(request)


def _install_hooks(app: Flask, state: ServerState) -> None:
    @app.before_request
    def _start() -> None:
        g.lutece_state = state
        g.lutece_started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers.setdefault("Access-Control-Allow-Origin", "*")
        response.headers.pop("X-Powered-By", None)
        _log_access(response)
        return response

    @app.errorhandler(404)
    def _no_route(_error) -> Response:
        return ogc_exception(404, "NotFound", "Not found")

    @app.errorhandler(405)
    def _bad_method(_error) -> Response:
        return ogc_exception(405, "InvalidParameterValue", "Method not allowed")

    @app.errorhandler(Exception)
    def _crash(error) -> Response:
        from werkzeug.exceptions import HTTPException

        if isinstance(error, HTTPException):
            return ogc_exception(error.code or 400, "InvalidParameterValue", error.name)
        log.exception("unhandled error on %s", request.path)
        return ogc_exception(500, "NoApplicableCode", "Internal server error")


_SECRET_WORDS = ("key", "token", "secret", "password", "auth")


def _log_access(response: Response) -> None:
    """One line per request: client, method, path and query (secrets masked), status, duration, size, who."""
    started = g.get("lutece_started")
    duration = (time.perf_counter() - started) * 1000 if started else 0.0
    raw = request.query_string.decode("latin-1")
    if "%" in raw or any(word in raw.lower() for word in _SECRET_WORDS):  # parsed and masked when it may hold one
        query = [(name, "***" if any(word in name.lower() for word in _SECRET_WORDS) else value)
                 for name, value in parse_qsl(raw, keep_blank_values=True)]
        raw = urlencode(query)
    target = request.path + (f"?{raw}" if raw else "")
    view = g.get("lutece_view")
    who = view.caller.partner if view is not None and view.caller.partner else "-"
    access_log.info('%s "%s %s" %d %.1fms %s %s', request.remote_addr or "-", request.method, target,
                    response.status_code, duration, response.calculate_content_length() or "-", who)
