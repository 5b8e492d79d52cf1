"""What lineage records: the inputs' sha256 and the versions of the software that ran."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

SOFTWARE = ("lutece", "laspy", "lazrs", "numpy", "scipy", "shapely", "pyproj", "rasterio", "geopandas",
            "pyogrio", "open3d", "contourpy", "dask", "distributed")


def file_sha256(path: Path, cache_file: Path | None = None) -> str:
    """sha256 of a file's content, remembered in ``cache_file`` by (path, size, mtime)."""
    path = Path(path)
    stat = path.stat()
    stamp = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    known = _read_cache(cache_file)
    if stamp in known:
        return known[stamp]
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if cache_file is not None:
        known = _read_cache(cache_file)  # another process may have added entries meanwhile
        known[stamp] = digest.hexdigest()
        partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(known), encoding="utf-8")
        os.replace(partial, cache_file)
    return digest.hexdigest()


def _read_cache(cache_file: Path | None) -> dict[str, str]:
    if cache_file is None or not cache_file.is_file():
        return {}
    try:
        return json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a damaged cache only costs a re-hash


@cache
def software_versions() -> dict[str, str]:
    """Installed versions of the libraries the products depend on."""
    versions = {}
    for name in SOFTWARE:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    import rasterio

    versions["GDAL"] = rasterio.__gdal_version__
    return versions
