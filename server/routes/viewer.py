"""The web viewer at ``/viewer``: its page, its own scripts, and the browser libraries, under versioned URLs.

Routes::

    /viewer                                  the page (``no-cache``: it names the versioned URLs below)
    /viewer/app/DIGEST/FILE                  the viewer's own files (``server/viewer/*.js|css``); DIGEST is
                                             a hash of all of them, so a new release is a new URL
    /viewer/lib/NAME@VERSION/PATH            maplibre-gl and cesium as the set-up copied them from their npm
                                             packages into ``build/viewer/lib`` (``make setup``)

Everything but the page is ``immutable``: a URL never changes content. The
viewer is a client of the public endpoints only (``/collections``, vector
tiles, maps, 3D Tiles) with the caller's key in a header; this module serves
files and decides nothing about layers.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, request
from werkzeug.utils import send_file

from server.routes.http import BadRequest
from server.routes.tiles3d import IMMUTABLE, safe_parts

SOURCE = Path(__file__).resolve().parents[1] / "viewer"
#: Where ``make setup`` puts the libraries (server setting ``viewer_assets`` overrides it).
DEFAULT_ASSETS = Path(__file__).resolve().parents[2] / "build" / "viewer" / "lib"
LIBRARIES = ("maplibre-gl", "cesium")
APP_SUFFIXES = (".js", ".css")
MEDIA_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".json": "application/json",
               ".wasm": "application/wasm", ".png": "image/png", ".jpg": "image/jpeg", ".svg": "image/svg+xml",
               ".glb": "model/gltf-binary", ".xml": "application/xml", ".ktx2": "image/ktx2",
               ".html": "text/html", ".woff": "font/woff", ".woff2": "font/woff2"}


@dataclass(frozen=True)
class Release:
    """The viewer's own files (name -> bytes) and the digest naming them in URLs."""

    files: dict[str, bytes]
    digest: str

    @classmethod
    def read(cls, folder: Path = SOURCE) -> "Release":
        files = {path.name: path.read_bytes() for path in sorted(folder.iterdir())
                 if path.is_file() and path.suffix in APP_SUFFIXES}
        hasher = hashlib.sha256()
        for name, data in files.items():
            hasher.update(name.encode() + b"\0" + data + b"\0")
        return cls(files, hasher.hexdigest()[:16])


def installed_libraries(folder: Path) -> dict[str, str]:
    """``{name: "name@version"}`` of the libraries found in ``folder`` (the newest when several)."""
    found: dict[str, str] = {}
    if folder.is_dir():
        for entry in sorted(folder.iterdir()):
            name, _, version = entry.name.rpartition("@")
            if entry.is_dir() and name in LIBRARIES and version:
                found[name] = entry.name
    return found


def register(app: Flask, state) -> None:
    """Add the viewer's routes to ``app`` (a registrar of :data:`server.app.ROUTES`)."""
    assets = Path(state.settings.get("viewer_assets") or DEFAULT_ASSETS)
    release = Release.read()
    template = (SOURCE / "index.html").read_text(encoding="utf-8")

    @app.route("/viewer")
    def viewer_page():
        libraries = installed_libraries(assets)
        missing = [name for name in LIBRARIES if name not in libraries]
        if missing:
            return _missing_page(missing)
        root = request.script_root.rstrip("/")
        page = (template.replace("{{app}}", f"{root}/viewer/app/{release.digest}")
                .replace("{{maplibre}}", f"{root}/viewer/lib/{libraries['maplibre-gl']}")
                .replace("{{cesium}}", f"{root}/viewer/lib/{libraries['cesium']}"))
        return Response(page, 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"})

    @app.route("/viewer/app/<digest>/<name>")
    def viewer_app(digest: str, name: str):
        data = release.files.get(name)
        if digest != release.digest or data is None:
            return _not_found()
        response = Response(data, 200, {"Content-Type": _media_type(name), "Cache-Control": IMMUTABLE})
        response.set_etag(f"{release.digest}-{name}")
        return response.make_conditional(request)

    @app.route("/viewer/lib/<library>/<path:path>")
    def viewer_lib(library: str, path: str):
        if library not in installed_libraries(assets).values():
            return _not_found()
        folder = (assets / library).resolve()
        try:
            target = folder.joinpath(*safe_parts(path))
        except BadRequest:
            return _not_found()
        if folder not in target.resolve().parents or not target.is_file():
            return _not_found()
        response = send_file(target, request.environ, mimetype=_media_type(target.name), conditional=True,
                             etag=True, max_age=31536000)
        response.headers["Cache-Control"] = IMMUTABLE
        return response


def _media_type(name: str) -> str:
    return MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def _not_found() -> Response:
    from server.app import ogc_exception

    return ogc_exception(404, "NotFound", "Not found")


def _missing_page(missing: list[str]) -> Response:
    names = html.escape(", ".join(missing))
    body = (f"<!doctype html><meta charset=utf-8><title>Lutèce</title><p>Le visualiseur n'est pas installé "
            f"sur ce serveur (bibliothèques manquantes : {names}) : lancez <code>make setup</code>.</p>"
            f"<p lang=en>The viewer's libraries are not installed ({names}): run <code>make setup</code>.</p>")
    return Response(body, 503, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})
