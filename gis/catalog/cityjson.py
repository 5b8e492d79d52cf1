"""CityJSON products: how a file is told to be CityJSON, and the gate it passes before publication.

A CityJSON 2.0 file (``buildings.city.json``, as ``writers.cityjson`` writes
it) is published as one file, like a COG: stored byte for byte under its
sha256, served and mirrored as ``application/city+json``. The gate refuses,
naming the file and what to do: unreadable JSON, a document that is not
CityJSON, a version other than 2.0, no ``metadata.referenceSystem``, a
reference system whose horizontal CRS is not the declared one, no
CityObjects. It checks what the catalog relies on (CRS, extent, a
non-empty model); the full schema and the geometry are the validators'
(cjval, jsonschema) and the pipeline's tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gis.catalog.gates import GateReport, check_crs
from gis.errors import InputError, ProductError

KIND = "cityjson"
MEDIA_TYPE = "application/city+json"
VERSION = "2.0"
SUFFIX = ".city.json"


def named_cityjson(path: Path) -> bool:
    """Whether the file's name says CityJSON (``*.city.json``)."""
    return path.name.lower().endswith(SUFFIX)


def read_document(path: Path) -> Any:
    """The parsed JSON of ``path``.

    Raises
    ------
    ProductError
        The file cannot be read or is not JSON.
    """
    import orjson

    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ProductError(f"{path}: cannot be read ({exc.strerror or exc}); check the file and publish again") from None
    except orjson.JSONDecodeError as exc:
        raise ProductError(f"{path}: not readable JSON ({exc}); write the CityJSON file again and publish it") from None


def is_cityjson(path: Path) -> bool:
    """Whether a ``.json`` file's top-level ``"type"`` is ``"CityJSON"`` (it is read whole).

    Raises
    ------
    ProductError
        The file is not readable JSON.
    """
    document = read_document(path)
    return isinstance(document, dict) and document.get("type") == "CityJSON"


def check_cityjson(path: Path, declared_crs: str | None) -> GateReport:
    """Pass a CityJSON file through the publication gate.

    Parameters
    ----------
    path
        The CityJSON file.
    declared_crs
        The CRS the layer declares (the catalog's working CRS, else the
        layer's recorded one); ``None``: any CRS PROJ knows. A compound
        reference system (horizontal + heights, e.g. EPSG:7415) is compared
        by its horizontal part.

    Returns
    -------
    GateReport
        Its CRS, extent (x, y of the vertices), CityObjects count and version.

    Raises
    ------
    ProductError
        One line naming the file, what is wrong and what to do.
    """
    document = read_document(path)
    if not isinstance(document, dict) or document.get("type") != "CityJSON":
        found = document.get("type") if isinstance(document, dict) else type(document).__name__
        raise ProductError(f"{path}: not a CityJSON document (its top-level type is {found!r}, not 'CityJSON'); "
                           f"publish a CityJSON 2.0 file")
    version = document.get("version")
    if version != VERSION:
        raise ProductError(f"{path}: CityJSON version {version!r}; the city GIS publishes CityJSON {VERSION}: "
                           f"upgrade it (cjio FILE upgrade save OUT) and publish again")
    crs = _reference_crs(path, document, declared_crs)
    objects = document.get("CityObjects")
    if not isinstance(objects, dict) or not objects:
        raise ProductError(f"{path}: no CityObjects; publish a CityJSON that holds at least one city object")
    vertices = document.get("vertices")
    extent = _extent(path, vertices, document.get("transform"))
    return GateReport(features=len(objects), crs=crs, extent=extent,
                      extra={"cityjson_version": version, "city_objects": len(objects),
                             "vertices": len(vertices), "reference_system": document["metadata"]["referenceSystem"]})


def _reference_crs(path: Path, document: dict, declared_crs: str | None) -> str:
    """The CRS of ``metadata.referenceSystem`` as an authority string, checked against ``declared_crs``."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    metadata = document.get("metadata")
    reference = metadata.get("referenceSystem") if isinstance(metadata, dict) else None
    if not isinstance(reference, str) or not reference.strip():
        raise ProductError(f"{path}: no metadata.referenceSystem; write the CRS of its vertices "
                           f"(e.g. https://www.opengis.net/def/crs/EPSG/0/2154) and publish again")
    try:
        crs = CRS.from_user_input(reference)
    except CRSError:
        raise ProductError(f"{path}: metadata.referenceSystem {reference!r} is not a CRS PROJ knows; write an OGC "
                           f"CRS URL such as https://www.opengis.net/def/crs/EPSG/0/2154") from None
    horizontal = crs.sub_crs_list[0] if crs.is_compound and crs.sub_crs_list else crs
    check_crs(f"{path} (metadata.referenceSystem)", horizontal.to_wkt(), declared_crs)
    return crs.to_string()


def _extent(path: Path, vertices: Any, transform: Any) -> tuple[float, float, float, float] | None:
    """The x, y bounds of the vertices in the file's CRS (``transform`` applied); None without vertices."""
    import numpy as np

    if not isinstance(vertices, list):
        raise ProductError(f"{path}: 'vertices' is not a list; write a CityJSON 2.0 file (cjval tells what is wrong)")
    if not vertices:
        return None
    try:
        points = np.asarray(vertices, dtype=float)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError
        if transform is not None:
            points = points * np.asarray(transform["scale"], dtype=float) + np.asarray(transform["translate"],
                                                                                     dtype=float)
    except (ValueError, TypeError, KeyError):
        raise ProductError(f"{path}: its vertices (or transform) are not [x, y, z] numbers; write a CityJSON 2.0 "
                           f"file (cjval tells what is wrong)") from None
    low, high = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    return (float(low[0]), float(low[1]), float(high[0]), float(high[1]))


def unknown_json(path: Path) -> InputError:
    """The error for a ``.json`` product that is not CityJSON."""
    return InputError(f"{path}: a JSON product must be CityJSON (top-level type 'CityJSON'); give a .gpkg, a .tif "
                      f"(COG), a CityJSON file or a 3D Tiles folder")
