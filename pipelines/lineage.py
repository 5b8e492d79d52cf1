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


def digest(payload: dict) -> str:
    """A short stable key of what a tile's parts or a product depend on (JSON-able values)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def made_by(target: Path, job_key: str) -> bool:
    """Whether ``target`` exists and its lineage sidecar names the run ``job_key`` (a rerun may keep it)."""
    sidecar = target.with_name(target.name + ".lineage.json")
    try:
        return target.exists() and json.loads(sidecar.read_text(encoding="utf-8")).get("job_key") == job_key
    except (OSError, ValueError):
        return False


@cache
def software_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the libraries the products depend on, and of a pipeline's ``extra`` ones."""
    versions = {}
    for name in SOFTWARE + extra:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    import rasterio

    versions["GDAL"] = rasterio.__gdal_version__
    return versions
