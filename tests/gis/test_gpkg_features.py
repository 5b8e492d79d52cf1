"""The GeoPackage backend's write of a version's features stores what pyogrio's own write would."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gis.backends.gpkg_features import write_features
from gis.checksums import geometry_wkb


def frames() -> dict[str, gpd.GeoDataFrame]:
    boxes = shapely.box(np.arange(4) * 10.0, 0, np.arange(4) * 10.0 + 8, 8)
    attributes = {"name": pd.array(["Hôtel", None, "École", ""], dtype="str"), "floors": np.arange(4, dtype="int16"),
                  "height": [3.5, np.nan, 9.25, 12.0], "listed": [True, False, False, True],
                  "visits": pd.array([5, None, 7, 8], dtype="Int64")}
    multi = np.array([*boxes[:2], shapely.multipolygons([boxes[2], boxes[3]]), boxes[3]], dtype=object)
    return {
        "polygons": gpd.GeoDataFrame(attributes, geometry=boxes, crs="EPSG:2154"),
        "points with heights": gpd.GeoDataFrame({"z": [1.0, 2.0, 3.0]}, geometry=shapely.points(
            [[0, 0, 1], [1, 1, 2], [2, 2, 3]]), crs="EPSG:2154"),
        "mixed single and multi": gpd.GeoDataFrame({"n": [1, 2, 3, 4]}, geometry=multi, crs="EPSG:2154"),
        "times": gpd.GeoDataFrame({"seen": pd.to_datetime(["2024-01-02", None, "1999-12-31", "2000-01-01"])},
                                  geometry=boxes, crs="EPSG:2154"),
        "no CRS code": gpd.GeoDataFrame({"n": [1, 2, 3, 4]}, geometry=boxes,
                                        crs="+proj=lcc +lat_1=49 +lat_2=44 +lat_0=46.5 +lon_0=3 +x_0=700000 "
                                            "+y_0=6600000 +ellps=GRS80 +units=m +no_defs"),
    }


@pytest.mark.parametrize("case", list(frames()))
def test_the_table_is_the_one_pyogrio_writes(case, tmp_path):
    frame = frames()[case]
    ours, reference = tmp_path / "ours.gpkg", tmp_path / "reference.gpkg"
    write_features(frame, geometry_wkb(frame), ours, "data")
    pyogrio.write_dataframe(frame, reference, layer="data", driver="GPKG")
    info, expected = pyogrio.read_info(ours, layer="data"), pyogrio.read_info(reference, layer="data")
    for key in ("geometry_type", "features", "crs"):
        assert info[key] == expected[key], key
    assert list(info["fields"]) == list(expected["fields"]) and list(info["dtypes"]) == list(expected["dtypes"])
    back, wanted = pyogrio.read_dataframe(ours, layer="data"), pyogrio.read_dataframe(reference, layer="data")
    pd.testing.assert_frame_equal(pd.DataFrame(back.drop(columns="geometry")),
                                  pd.DataFrame(wanted.drop(columns="geometry")))
    assert back.geometry.geom_equals_exact(wanted.geometry, 0).all()
    assert pyogrio.read_dataframe(ours, layer="data", bbox=(0, 0, 5, 5)).shape[0] >= 1  # the R-tree answers
