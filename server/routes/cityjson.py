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
"""

from __future__ import annotations

from datetime import datetime

from werkzeug.routing import Map, Rule
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from gis.feeds.downloads import FORMATS, file_name
from server.routes.http import CORS_HEADERS, Delivery, base_url, not_found

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
    path = delivery.catalog().backend.files_path(version)
    response = send_file(path, request.environ, mimetype=MEDIA_TYPE, etag=version.checksum, conditional=True,
                         last_modified=datetime.fromisoformat(version.published), as_attachment=True,
                         download_name=file_name(layer.id, version.number, "cityjson"))
    response.headers["Cache-Control"] = "no-cache" if layer.access == "open" else "private, no-cache"
    response.headers["Accept-Ranges"] = "bytes"
    response.headers.update(CORS_HEADERS)
    return response


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
