"""Write a vector version's features into the catalog GeoPackage through GDAL.

The usual path hands pyogrio an Arrow table of the attributes and of the
geometries' WKB that the checksum already computed (``pyogrio.write_arrow``):
``pyogrio.write_dataframe`` would encode the geometries again and scan them
for their type (0.2-0.4 s of a 0.7-1.0 s write of 100,000 polygons). Frames
whose columns or geometries pyogrio converts itself (dates and times, Python
objects, mixed geometry types, which it may promote to multi-geometries) go
through ``write_dataframe``, so both paths store the same table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# shapely's geometry type ids -> the geometry types GDAL is told; a linear ring goes the usual way
_TYPE_NAMES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
               6: "MultiPolygon", 7: "GeometryCollection"}


def write_features(frame, wkb: np.ndarray | None, path: Path, layer: str) -> None:
    """Write ``frame`` (canonical: attributes, then ``geometry``) as the new table ``layer`` of ``path``.

    ``wkb`` is the geometries' little-endian WKB when already computed.
    """
    import pyogrio

    geometry_type = _geometry_type(frame) if wkb is not None else None
    table = _arrow_table(frame, wkb) if geometry_type is not None else None
    if table is None:
        options = {"geometry_type": "Unknown"} if len(frame) == 0 else {}
        pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", use_arrow=True, **options)
        return
    pyogrio.write_arrow(table, path, layer=layer, driver="GPKG", geometry_name="geometry",
                        geometry_type=geometry_type, crs=_crs(frame.crs))


def _geometry_type(frame) -> str | None:
    """The layer's geometry type as pyogrio would declare it; None when it is not one type (pyogrio decides)."""
    import shapely

    geometries = np.asarray(frame.geometry.values)
    present = geometries[~shapely.is_missing(geometries)]
    types = np.unique(shapely.get_type_id(present))
    if len(types) != 1 or int(types[0]) not in _TYPE_NAMES:
        return None
    name = _TYPE_NAMES[int(types[0])]
    return f"{name} Z" if shapely.has_z(present[~shapely.is_empty(present)]).any() else name


def _arrow_table(frame, wkb: np.ndarray):
    """The attributes and the WKB as an Arrow table; None when a column is not numbers, booleans or text."""
    import pandas as pd
    import pyarrow as pa

    attributes = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    if not all(dtype.kind in "biuf" or isinstance(dtype, pd.StringDtype) for dtype in attributes.dtypes):
        return None
    table = pa.Table.from_pandas(attributes, preserve_index=False)
    return table.append_column("geometry", pa.array(wkb, type=pa.binary()))


def _crs(crs) -> str:
    """The CRS as pyogrio passes it to GDAL: its EPSG code, else its WKT."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt("WKT1_GDAL")
