"""``lutece doctor``: which of the libraries Lutèce stands on load, and their versions.

Each check imports one library and reads its version. A required library that
cannot be imported is reported with the fix (usually ``make setup``, which
installs the Python packages and the Debian packages they need).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from gis.errors import DependencyError

FIX_SETUP = "run 'make setup' (or 'pip install -e .' in the virtual environment)"


@dataclass(frozen=True)
class Check:
    """One library to import, how to read its version, and how to fix its absence."""

    name: str
    module: str
    version: Callable[[ModuleType], str]
    fix: str = FIX_SETUP
    required: bool = True


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str
    fix: str
    required: bool


def _attr(name: str) -> Callable[[ModuleType], str]:
    return lambda module: str(getattr(module, name))


def _lazrs_version(laspy: ModuleType) -> str:
    backends = laspy.LazBackend.detect_available()
    if laspy.LazBackend.Lazrs not in backends:
        raise ImportError("laspy finds no lazrs backend, so LAZ cannot be read or written")
    from importlib.metadata import version

    return f"laspy {laspy.__version__}, lazrs {version('lazrs')}"


def _dask_version(dask: ModuleType) -> str:
    distributed = importlib.import_module("distributed")
    return f"dask {dask.__version__}, distributed {distributed.__version__}"


def _gdal_version(rasterio: ModuleType) -> str:
    pyogrio = importlib.import_module("pyogrio")
    return f"{rasterio.__gdal_version__} (rasterio {rasterio.__version__}; pyogrio {pyogrio.__version__} bundles {pyogrio.__gdal_version_string__})"


def _proj_version(pyproj: ModuleType) -> str:
    return f"{pyproj.proj_version_str} (pyproj {pyproj.__version__})"


def _geos_version(shapely: ModuleType) -> str:
    return f"{shapely.geos_version_string} (shapely {shapely.__version__})"


def default_checks() -> list[Check]:
    """The libraries ``lutece doctor`` reports on, in the order it shows them."""
    return [
        Check("GDAL", "rasterio", _gdal_version),
        Check("PROJ", "pyproj", _proj_version),
        Check("GEOS", "shapely", _geos_version),
        Check("geopandas", "geopandas", _attr("__version__")),
        Check("laspy/lazrs", "laspy", _lazrs_version, fix="run 'make setup' (installs laspy[lazrs])"),
        Check("open3d", "open3d", _attr("__version__"),
              fix="install the system library with 'apt-get install libusb-1.0-0' (make setup does it)"),
        Check("py3dtiles", "py3dtiles", _attr("__version__")),
        Check("pygeoapi", "pygeoapi", _attr("__version__")),
        Check("ifcopenshell", "ifcopenshell", _attr("version")),
        Check("dask", "dask", _dask_version, fix="run 'make setup' (installs dask[distributed])"),
    ]


def run_check(check: Check) -> Result:
    """Import one library and read its version; never raises."""
    try:
        module = importlib.import_module(check.module)
        detail = check.version(module)
    except Exception as exc:  # any failure to load is what the doctor reports
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Result(check.name, False, reason, check.fix, check.required)
    return Result(check.name, True, detail, "", check.required)


def diagnose(checks: list[Check] | None = None) -> list[Result]:
    """Run every check and return the results in order."""
    return [run_check(check) for check in (checks if checks is not None else default_checks())]


def raise_for_missing(results: list[Result]) -> None:
    """Raise one :class:`DependencyError` naming every missing required library and its fix."""
    missing = [result for result in results if result.required and not result.ok]
    if missing:
        parts = [f"{result.name} cannot be imported ({result.detail}): {result.fix}" for result in missing]
        raise DependencyError("; ".join(parts))
