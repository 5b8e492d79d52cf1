"""The download files of a published version, built once and cached with their size and sha256.

=====================  ==========================================  ====================================
layer kind             files                                       how
=====================  ==========================================  ====================================
vector                 ``ID-vN.gpkg`` (the working CRS),           written by GDAL from the version's
                       ``ID-vN.geojson`` (RFC 7946, CRS84)         features
raster                 ``ID-vN.tif``                               the stored COG itself (no copy)
cityjson               ``ID-vN.city.json``                         the stored CityJSON itself (no copy)
pointcloud/mesh-3dtiles ``ID-vN-3dtiles.zip``                      the tileset's files in one zip
=====================  ==========================================  ====================================

A version is immutable, so its files are too: the publisher builds a vector's
as it publishes an open layer (:func:`prebuild`), the server any still
missing on first use, under a lock (two server workers never build the same file twice, and never
two different files under one name), into a temporary name, then renamed into
place with a sidecar ``NAME.json`` (size, sha256) written last: a file with
its sidecar is complete. A new version is a new file; nothing stale is served.

The GeoPackage backend's catalog is read by GDAL when a vector is exported,
and a process serving the catalog through Python's sqlite3 must not open it
with GDAL as well (two SQLite copies on one file): :class:`Downloads` with
``isolate=True`` builds vector files in a child process
(``python -m gis.feeds.downloads``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from gis.checksums import sha256_file, tree_files
from gis.errors import LuteceError, StoreError
from gis.records import Version

log = logging.getLogger(__name__)

FORMATS = {  # format -> (file suffix, media type, title)
    "gpkg": (".gpkg", "application/geopackage+sqlite3", "GeoPackage"),
    "geojson": (".geojson", "application/geo+json", "GeoJSON (RFC 7946, WGS 84)"),
    "cog": (".tif", "image/tiff", "GeoTIFF (Cloud Optimized)"),
    "3dtiles-zip": ("-3dtiles.zip", "application/zip", "3D Tiles (zip)"),
    "cityjson": (".city.json", "application/city+json", "CityJSON 2.0"),
}
KIND_FORMATS = {"vector": ("gpkg", "geojson"), "raster": ("cog",),
                "pointcloud-3dtiles": ("3dtiles-zip",), "mesh-3dtiles": ("3dtiles-zip",), "cityjson": ("cityjson",)}
STORED_FORMATS = ("cog", "cityjson")  # the stored file is the download: its checksum is the version's
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same folder gives the same zip


@dataclass(frozen=True)
class Download:
    """One download file of one version."""

    layer_id: str
    version: int
    format: str
    name: str
    media_type: str
    size: int
    sha256: str
    path: Path

    def public(self) -> dict:
        """Its description without the local path."""
        return {key: value for key, value in asdict(self).items() if key != "path"}


def downloads_folder(backend) -> Path:
    """Where a store keeps its download files: ``downloads/`` beside its ``files/``."""
    return Path(backend.files.root).parent / "downloads"


def prebuild(catalog, layer) -> None:
    """Build the download files of an open vector layer's current version, as it is published.

    Only in a store whose downloads are served (its ``downloads/`` folder
    exists: a server made it): a city no server publishes pays nothing. The
    publisher builds them (it holds GDAL already), so a server never waits
    for a child process on a request, and a mirror's sync right after a
    publication costs only its requests. A failure is logged and left to the
    server, which builds whatever is missing on first use.
    """
    if layer.kind != "vector" or layer.access != "open" or layer.current_version is None:
        return
    if not downloads_folder(catalog.backend).is_dir():
        return
    version = catalog.backend.get_version(layer.id, layer.current_version)
    try:
        Downloads(catalog, downloads_folder(catalog.backend)).all(version)
    except Exception as error:  # the publication is committed: whatever GDAL raises must not undo its success
        log.warning("the downloads of %s version %d were not built (%s); the server builds them on first use",
                    layer.id, version.number, error)


def file_name(layer_id: str, number: int, fmt: str) -> str:
    """The download's file name: ``buildings-v3.gpkg``."""
    return f"{layer_id}-v{number}{FORMATS[fmt][0]}"


def formats_for(kind: str) -> tuple[str, ...]:
    return KIND_FORMATS.get(kind, ())


class Downloads:
    """The cache of download files of one catalog.

    Parameters
    ----------
    catalog
        The :class:`~gis.catalog.service.Catalog` (for versions, stored files and features).
    folder
        Where the built files are kept (``<folder>/<layer>/<number>-<sha256[:16]>/``).
    store
        The ``store`` section of the configuration, for the child process
        building vector files when ``isolate`` is true.
    isolate
        Build vector files in a child process (see the module's docstring).
    """

    def __init__(self, catalog, folder: Path, store: dict | None = None, isolate: bool = False) -> None:
        self.catalog = catalog
        self.folder = Path(folder)
        self.store = store
        self.isolate = isolate
        if isolate and store is None:
            raise ValueError("isolate needs the store section")

    def all(self, version: Version) -> list[Download]:
        """Every download file of ``version``, built when missing."""
        return [self.get(version, fmt) for fmt in formats_for(version.kind)]

    def prepare(self, versions: list[Version]) -> None:
        """Build the missing vector files of ``versions`` at once (one child process for all when isolated)."""
        missing = [v for v in versions if v.kind == "vector" and any(
            _read_sidecar(self._folder(v), file_name(v.layer_id, v.number, fmt)) is None for fmt in ("gpkg", "geojson"))]
        if not missing or not self.isolate:
            return
        for version in missing:
            self._folder(version).mkdir(parents=True, exist_ok=True)
        _build_in_child(self.store, missing, self.folder)

    def _folder(self, version: Version) -> Path:
        return self.folder / version.layer_id / f"{version.number}-{version.checksum[:16]}"

    def get(self, version: Version, fmt: str) -> Download:
        """The download ``fmt`` of ``version``, built on first use.

        Raises
        ------
        LayerNotFound
            ``fmt`` is not a download of that kind of layer.
        StoreError
            The file could not be built (disk full, store unreachable).
        """
        from gis.errors import LayerNotFound

        if fmt not in formats_for(version.kind):
            raise LayerNotFound(f"no {fmt} download for a {version.kind} layer")
        name = file_name(version.layer_id, version.number, fmt)
        if fmt in STORED_FORMATS:  # the stored file is the download, its checksum the version's
            path = self.catalog.backend.files_path(version)
            return Download(version.layer_id, version.number, fmt, name, FORMATS[fmt][1], path.stat().st_size,
                            version.checksum, path)
        folder = self._folder(version)
        found = _read_sidecar(folder, name)
        if found is not None:
            return found
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder / ".lock"):
            found = _read_sidecar(folder, name)
            if found is None:
                self._build(version, fmt, folder)
                found = _read_sidecar(folder, name)
        if found is None:
            raise StoreError(f"the {fmt} download of {version.layer_id} version {version.number} was not built")
        return found

    def _build(self, version: Version, fmt: str, folder: Path) -> None:
        try:
            if fmt == "3dtiles-zip":
                _finish(folder, version, fmt, _zip_tileset(self.catalog.backend.files_path(version).parent,
                                                           folder, file_name(version.layer_id, version.number, fmt)))
            elif self.isolate:
                _build_in_child(self.store, [version], self.folder)
            else:
                build_vector_files(self.catalog, version, folder)
        except LuteceError:
            raise
        except OSError as error:
            raise StoreError(f"could not build the downloads of {version.layer_id} version {version.number} "
                             f"in {folder}: {error.strerror or error}") from None


def build_vector_files(catalog, version: Version, folder: Path) -> None:
    """Write the GeoPackage and the GeoJSON of a vector version into ``folder`` (both, with sidecars)."""
    import pyogrio

    frame = catalog.backend.read_vector(version)
    for fmt in ("gpkg", "geojson"):
        name = file_name(version.layer_id, version.number, fmt)
        if _read_sidecar(folder, name) is not None:
            continue
        partial = folder / f".{name}.partial{FORMATS[fmt][0]}"
        partial.unlink(missing_ok=True)
        if fmt == "gpkg":
            pyogrio.write_dataframe(frame, partial, layer=version.layer_id, driver="GPKG")
        else:
            pyogrio.write_dataframe(frame.to_crs("OGC:CRS84") if frame.crs else frame, partial, driver="GeoJSON",
                                    layer=version.layer_id, RFC7946="YES")
        _finish(folder, version, fmt, partial)


def _build_in_child(store: dict, versions: list[Version], folder: Path) -> None:
    """Build the vector files of ``versions`` in a child process (each under its folder's lock)."""
    request = json.dumps({"store": store, "folder": str(folder),
                          "versions": [[version.layer_id, version.number] for version in versions]})
    result = subprocess.run([sys.executable, "-m", "gis.feeds.downloads"], input=request, capture_output=True,
                            text=True, timeout=3600)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        names = ", ".join(f"{v.layer_id} version {v.number}" for v in versions)
        raise StoreError(f"building the downloads of {names} failed: {last}")


def _zip_tileset(source: Path, folder: Path, name: str) -> Path:
    """One zip of a tileset's files (sorted, fixed times: the same folder gives the same bytes)."""
    partial = folder / f".{name}.partial"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for relative, path in sorted(tree_files(source)):
            info = zipfile.ZipInfo(relative, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(path, "rb") as stream, archive.open(info, "w") as out:
                while chunk := stream.read(1 << 20):
                    out.write(chunk)
    return partial


def _finish(folder: Path, version: Version, fmt: str, partial: Path) -> None:
    """Sync the built file, rename it into place, then write its sidecar (last: it marks it complete)."""
    name = file_name(version.layer_id, version.number, fmt)
    with open(partial, "rb") as stream:
        os.fsync(stream.fileno())
    target = folder / name
    os.replace(partial, target)
    record = Download(version.layer_id, version.number, fmt, name, FORMATS[fmt][1], target.stat().st_size,
                      sha256_file(target), target).public()
    sidecar = folder / f".{name}.json.partial"
    sidecar.write_text(json.dumps(record), encoding="utf-8")
    os.replace(sidecar, folder / f"{name}.json")


def _read_sidecar(folder: Path, name: str) -> Download | None:
    try:
        record = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        path = folder / name
        if path.stat().st_size != record["size"]:
            return None
        return Download(path=path, **record)
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (and threads: each takes its own descriptor)."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def etag(download: Download) -> str:
    """A strong ETag of a download: its sha256 (the file never changes under its URL)."""
    return hashlib.sha256(f"{download.sha256}:{download.name}".encode()).hexdigest()[:40]


def _main() -> int:
    """Child process: build the vector files of one version (request as JSON on stdin)."""
    from gis.backends import open_backend
    from gis.catalog.service import Catalog

    request = json.loads(sys.stdin.read())
    try:
        with Catalog(open_backend(request["store"], create=False)) as catalog:
            downloads = Downloads(catalog, Path(request["folder"]))
            for layer_id, number in request["versions"]:
                version = catalog.backend.get_version(layer_id, int(number))
                folder = downloads._folder(version)
                folder.mkdir(parents=True, exist_ok=True)
                with _locked(folder / ".lock"):
                    build_vector_files(catalog, version, folder)
    except LuteceError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"Error: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
