"""The open-data feeds over HTTP: the DCAT-AP catalogue, the public change feed and the downloads.

Routes::

    /catalog                                  DCAT-AP 3.0 (JSON-LD by default; Turtle with
                                              ``Accept: text/turtle`` or ``?f=ttl``; ``?f=jsonld``)
    /changes?since=SEQ[&limit=N]              public change events after SEQ, paged (``next``), with
                                              the DCAT document of each public dataset they name
    /downloads/ID/VERSION/FILE                a download file of the current version of an open layer

These are the portal's feeds: they concern the layers an anonymous caller
may see, whatever key a request carries (a partner's key opens nothing
here), as :func:`server.access.can_see` decides for :data:`~server.access.ANONYMOUS`.
A shared or internal layer is absent from all three, and its download URLs
answer as those of a layer that does not exist.

HTTP caching: strong ETags (the body's sha256 for the catalogue and the
feed; the file's sha256 for a download, whose URL names one immutable
version), ``Last-Modified``, 304 on ``If-None-Match``/``If-Modified-Since``,
and ranges (``Range``/``If-Range``) on the downloads.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime
from functools import partial

from werkzeug.routing import Map, Rule
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from gis.feeds.changes import DEFAULT_LIMIT, PublicFeed
from gis.feeds.dcat import catalog_graph, dataset_uri, serialize
from gis.feeds.downloads import Downloads, downloads_folder, file_name, formats_for
from gis.feeds.jsonld import NodeDocuments
from server.access import ANONYMOUS, can_see
from server.routes.http import CORS_HEADERS, BadRequest, Delivery, base_url, not_found

PUBLIC = partial(can_see, ANONYMOUS)
MEDIA = {"jsonld": "application/ld+json", "ttl": "text/turtle"}
IMMUTABLE = "public, max-age=31536000, immutable"

RULES = Map([
    Rule("/catalog", endpoint="catalog"),
    Rule("/changes", endpoint="changes"),
    Rule("/downloads/<layer_id>/<int:number>/<name>", endpoint="download"),
], strict_slashes=False, merge_slashes=False)


class _Feeds:
    """One worker's feed state: the public feed, the download cache and the last catalogue built."""

    def __init__(self, catalog) -> None:
        backend = catalog.backend
        store = {"backend": "geopackage", "path": str(backend.root)} if backend.name == "geopackage" else None
        # the GeoPackage catalog is read by GDAL for an export: in a child process, never beside our sqlite3
        folder = downloads_folder(backend)
        folder.mkdir(parents=True, exist_ok=True)  # from now on, publishers build the downloads (prebuild)
        self.downloads = Downloads(catalog, folder, store=store, isolate=store is not None)
        self.feed = PublicFeed(PUBLIC)
        self.lock = threading.Lock()
        self.built: _Built | None = None  # the last catalogue built


def handle(delivery: Delivery, request: Request, endpoint: str, **args) -> Response:
    feeds = delivery.cache("feeds", lambda: _Feeds(delivery.catalog()))
    if endpoint == "catalog":
        return catalogue(delivery, feeds, request)
    if endpoint == "changes":
        return changes(delivery, feeds, request)
    return download(delivery, feeds, request, args["layer_id"], args["number"], args["name"])


def catalogue(delivery: Delivery, feeds: _Feeds, request: Request) -> Response:
    fmt = _catalogue_format(request)
    built = _built(delivery, feeds, request)
    return _conditional(request, built.body(fmt), MEDIA[fmt], built.modified)


def changes(delivery: Delivery, feeds: _Feeds, request: Request) -> Response:
    """The public events after ``since``, with the DCAT document of each dataset they name that is public now.

    A mirror thus learns what changed in this one request; a layer an event
    names that is not public now (withdrawn, reclassified) has no document.
    """
    since = _whole(request.args, "since", 0)
    limit = _whole(request.args, "limit", DEFAULT_LIMIT)
    page = feeds.feed.page(delivery.catalog(), since=since, limit=limit)
    named = {event["layer"] for event in page["events"]}
    page["datasets"] = _documents(delivery, feeds, request, named) if named else {}
    body = json.dumps(page, ensure_ascii=False).encode("utf-8")
    return _conditional(request, body, "application/json", feeds.feed.last_time())


class _Built:
    """The catalogue as built for one position of the feed: its graph, each syntax, each dataset's document."""

    def __init__(self, key: tuple, graph, modified: str | None) -> None:
        self.key, self.graph, self.modified = key, graph, modified
        self._bodies: dict[str, bytes] = {}
        self._documents: NodeDocuments | None = None
        self._lock = threading.Lock()

    def body(self, fmt: str) -> bytes:
        with self._lock:  # each syntax serialised on first demand
            if fmt not in self._bodies:
                self._bodies[fmt] = serialize(self.graph, fmt)
            return self._bodies[fmt]

    def documents(self, base: str, layer_ids: set[str]) -> dict[str, dict]:
        """The DCAT document of each of ``layer_ids`` that the catalogue lists (cut from its JSON-LD)."""
        body = self.body("jsonld")
        with self._lock:
            if self._documents is None:
                self._documents = NodeDocuments(body)
        nodes = set(self._documents.datasets())
        return {layer_id: self._documents.document(str(dataset_uri(base, layer_id))) for layer_id in sorted(layer_ids)
                if str(dataset_uri(base, layer_id)) in nodes}


def _documents(delivery: Delivery, feeds: _Feeds, request: Request, named: set[str]) -> dict[str, dict]:
    """The DCAT documents of the public datasets among ``named``: cut from the catalogue when this worker
    has it for the feed's position now, else from a graph of those datasets alone (a sync after one change
    costs that dataset, not the whole catalogue)."""
    catalog = delivery.catalog()
    last = feeds.feed.refresh(catalog)
    key = (base_url(request), last, feeds.feed.read_up_to)
    with feeds.lock:
        built = feeds.built if feeds.built is not None and feeds.built.key == key else None
    if built is None:
        graph = catalog_graph(catalog, feeds.downloads, base_url(request),
                              visible=lambda layer: layer.id in named and PUBLIC(layer))
        built = _Built(key, graph, None)
    return built.documents(base_url(request), named)


def _built(delivery: Delivery, feeds: _Feeds, request: Request) -> _Built:
    """The catalogue for the feed's position now, built once per position (and base URL)."""
    catalog = delivery.catalog()
    last = feeds.feed.refresh(catalog)
    key = (base_url(request), last, feeds.feed.read_up_to)
    with feeds.lock:
        if feeds.built is None or feeds.built.key != key:
            graph = catalog_graph(catalog, feeds.downloads, base_url(request), visible=PUBLIC)
            feeds.built = _Built(key, graph, feeds.feed.last_time())
        return feeds.built


def download(delivery: Delivery, feeds: _Feeds, request: Request, layer_id: str, number: int,
             name: str) -> Response:
    """A download of the current version of an open layer; anything else answers as a missing layer."""
    layer = delivery.catalog().backend.find_layer(layer_id) if _slug(layer_id) else None
    if layer is None or not PUBLIC(layer) or layer.current_version != number:
        return not_found()
    formats = [fmt for fmt in formats_for(layer.kind) if file_name(layer_id, number, fmt) == name]
    if not formats:
        return not_found()
    version = delivery.version(layer)
    if version.kind == "vector":
        feeds.downloads.prepare([version])
    found = feeds.downloads.get(version, formats[0])
    response = send_file(found.path, request.environ, mimetype=found.media_type, etag=found.sha256,
                         conditional=True, last_modified=_time(version.published), max_age=31536000,
                         download_name=found.name, as_attachment=True)
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["Accept-Ranges"] = "bytes"
    response.headers.update(CORS_HEADERS)
    return response


def _conditional(request: Request, body: bytes, mimetype: str, modified: str | None) -> Response:
    response = Response(body, mimetype=mimetype)
    response.set_etag(hashlib.sha256(body).hexdigest()[:40])
    if modified:
        response.last_modified = _time(modified)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Vary"] = "Accept"
    response.headers.update(CORS_HEADERS)
    return response.make_conditional(request)


def _catalogue_format(request: Request) -> str:
    asked = (request.args.get("f") or "").lower()
    if asked:
        if asked in ("jsonld", "json-ld", "json"):
            return "jsonld"
        if asked in ("ttl", "turtle"):
            return "ttl"
        raise BadRequest("f must be jsonld or ttl")
    best = request.accept_mimetypes.best_match(["application/ld+json", "text/turtle", "application/json"],
                                               default="application/ld+json")
    return "ttl" if best == "text/turtle" else "jsonld"


def _whole(args, name: str, default: int) -> int:
    value = args.get(name)
    if value is None:
        return default
    if not value.isdigit() or len(value) > 12:
        raise BadRequest(f"{name} must be a whole number, 0 or more")
    return int(value)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _slug(value: str) -> bool:
    from gis.errors import InputError
    from gis.records import check_layer_id

    try:
        check_layer_id(value)
    except InputError:
        return False
    return True
