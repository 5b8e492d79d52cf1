"""CityJSON delivery: the download of a CityJSON layer's current version.

Route (``ID`` a layer of kind ``cityjson``)::

    /collections/ID/cityjson     the current version's CityJSON 2.0 file (``application/city+json``)

The collection itself (``/collections/ID``, JSON, JSON-LD and HTML) is
pygeoapi's, from the resource :func:`server.resources.cityjson_resource`
builds, which links here. The URL names the layer, not a version, so the
answer is revalidated (``no-cache``) against a strong ETag (the version's
sha256) and ``Last-Modified`` (its publication); ranges are served. A shared
layer needs a key like every other route (:meth:`Delivery.layer`), and its
answer is ``private``. The immutable, versioned file of an open layer is the
open-data download (``/downloads/ID/N/ID-vN.city.json``, :mod:`server.routes.feeds`).

A client that accepts gzip gets the file gzipped (CityJSON shrinks 5-10x):
another representation (``Vary: Accept-Encoding``) with its own strong ETag,
the sha256 with ``-gzip``, as the 3D Tiles JSON files. Ranges are served on
the identity encoding only: a request with ``Range`` gets the uncompressed
bytes, so a byte range always means the same bytes. The gzipped copy is made
once per version (streamed, level 6) into the server's cache folder
(``server.tile_cache``: ``FOLDER/ID/NUMBER-SHA256/NAME.gz``, written aside
then renamed, as the vector tiles); without a cache folder, or when it cannot
be written, the file is served uncompressed.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import threading
from datetime import datetime
from pathlib import Path

from werkzeug.routing import Map, Rule
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from gis.feeds.downloads import FORMATS, file_name
from server.routes.http import CORS_HEADERS, Delivery, base_url, not_found, wants_gzip

log = logging.getLogger(__name__)

KINDS = ("cityjson",)
MEDIA_TYPE = FORMATS["cityjson"][1]

RULES = Map([
    Rule("/collections/<collection>/cityjson", endpoint="file"),
], strict_slashes=False, merge_slashes=False)


def handle(delivery: Delivery, request: Request, endpoint: str, collection: str) -> Response:
    """The CityJSON file of a layer the caller may see; the one not-found answer otherwise."""
    layer = delivery.layer(request, collection, KINDS)
    if layer is None:
        return not_found()
    version = delivery.version(layer)
    path, etag = delivery.catalog().backend.files_path(version), version.checksum
    name = file_name(layer.id, version.number, "cityjson")
    gzipped = None
    if wants_gzip(request) and "Range" not in request.headers and delivery.tile_cache is not None:
        gzipped = gzipped_copy(path, delivery.tile_cache / layer.id / f"{version.number}-{etag}" / f"{name}.gz")
    response = send_file(gzipped or path, request.environ, mimetype=MEDIA_TYPE, conditional=True,
                         etag=f"{etag}-gzip" if gzipped else etag,  # another representation, another ETag
                         last_modified=datetime.fromisoformat(version.published), as_attachment=True,
                         download_name=name)
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Cache-Control"] = "no-cache" if layer.access == "open" else "private, no-cache"
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers.update(CORS_HEADERS)
    return response


def gzipped_copy(source: Path, target: Path) -> Path | None:
    """``target``, the gzip of ``source`` (made once: a version never changes); None when it cannot be written.

    Streamed (a big file is never held in memory) into a name of this
    process and thread, then renamed into place: a reader never sees half of
    it, and two workers making it at once both end with a whole one.
    """
    if target.is_file():
        return target
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as plain, partial.open("wb") as out:
            with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=6, mtime=0) as packed:
                shutil.copyfileobj(plain, packed, 1 << 20)
        os.replace(partial, target)
    except OSError as error:  # a read-only or full disk: serve the file uncompressed
        log.warning("gzip of %s not written to %s (%s)", source.name, target, error)
        partial.unlink(missing_ok=True)
        return None
    return target


def links(settings_url: str, layer_id: str, length: int) -> list[dict]:
    """The links of a CityJSON layer to its file (for its collection and its record).

    ``length`` (the file's size) is given: pygeoapi would otherwise ask the
    server itself for it (a HEAD request to its own URL) each time it
    describes the collection, and drop the link when that fails.
    """
    return [{"rel": "enclosure", "type": MEDIA_TYPE, "title": "CityJSON 2.0", "length": length,
             "href": f"{settings_url}/collections/{layer_id}/cityjson"}]


def request_links(delivery: Delivery, request: Request, layer) -> list[dict]:
    """:func:`links` as seen from ``request`` (the record of ``layer``)."""
    size = delivery.catalog().backend.files_path(delivery.version(layer)).stat().st_size
    return links(base_url(request), layer.id, size)
