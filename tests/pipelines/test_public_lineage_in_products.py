"""A product file carries the public lineage (it may be served or handed out); the sidecar keeps the full one."""

from __future__ import annotations

import json
import sqlite3

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine

from pipelines.products import write_layers
from pipelines.spec import StageSpec
from pipelines.stages.rasters import DtmWriter

USER, HOST = "alice", "host-x"


def lineage(home) -> dict:
    tile = str(home / "lidar" / "0651_6861.laz")
    return {"pipeline": "lidar-to-2d", "pipeline_file": str(home / "p.yml"), "job_key": "0123abcd",
            "inputs": [{"path": tile, "sha256": "ab" * 32, "points": 10}],
            "stages": [{"type": "readers.las", "tag": "read", "inputs": [], "options": {"filename": [tile]}}],
            "software": {"lutece": "0.1.0"}, "created": "2026-12-03T12:00:00+00:00",
            "run": {"user": USER, "host": HOST}, "publisher": f"{USER}@{HOST}"}


def assert_public(text: str, home) -> None:
    assert USER not in text and HOST not in text and str(home) not in text, text
    assert "0651_6861.laz" in text and "0123abcd" in text  # still says where the product came from


def test_a_cog_tag_holds_the_public_lineage(tmp_path):
    home = tmp_path / "home" / USER
    part = tmp_path / "part.tif"
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "float32", "crs": "EPSG:2154",
               "transform": Affine(1, 0, 651000, 0, -1, 6861004)}
    with rasterio.open(part, "w", **profile) as dataset:
        dataset.write(np.ones((1, 4, 4), dtype="float32"))
    writer = DtmWriter(StageSpec(type="writers.dtm", tag="dtm", inputs=("read",), options={"resolution": 1.0}))
    written = writer.merge([part], tmp_path, lineage(home))
    with rasterio.open(written) as dataset:
        assert_public(dataset.tags()["LUTECE_LINEAGE"], home)


def test_a_geopackage_layer_description_holds_the_public_lineage(tmp_path):
    home = tmp_path / "home" / USER
    frame = gpd.GeoDataFrame({"h": [1.0]}, geometry=[shapely.box(651000, 6861000, 651001, 6861001)],
                             crs="EPSG:2154")
    target = write_layers({"trees": frame}, tmp_path / "layers.gpkg", {"trees": lineage(home)})
    with sqlite3.connect(target) as connection:
        [(description,)] = connection.execute(
            "SELECT description FROM gpkg_contents WHERE table_name = 'trees'").fetchall()
    assert_public(description, home)
    assert json.loads(description)["inputs"] == [{"file": "0651_6861.laz", "sha256": "ab" * 32, "points": 10}]
