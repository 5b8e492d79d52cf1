"""readers.las reads COPC, the cloud-optimised layout of LAZ 1.4, as the LAZ it is."""

import json

import laspy
import numpy as np
import pytest
import rasterio
from lidar_files import write_copc

from pipelines.runner import build_plan, run_pipeline
from pipelines.spec import parse_pipeline
from pipelines.stages.readers import read_points

PIPELINE = """
name: copc
output: {output}
pipeline:
  - {{type: readers.las, tag: read, filename: {inputs}}}
  - {{type: writers.dtm, tag: dtm, resolution: 1.0}}
  - {{type: writers.dsm, tag: dsm, resolution: 1.0}}
"""


@pytest.fixture(scope="module")
def corner(district, tmp_path_factory):
    """A 200 m corner of the sample district, as COPC (copc-lib) and as plain LAZ (laspy)."""
    folder = tmp_path_factory.mktemp("copc")
    source = laspy.read(district / "district.laz")
    x, y = np.asarray(source.x), np.asarray(source.y)
    points = source.points[(x < source.header.mins[0] + 200) & (y < source.header.mins[1] + 200)]
    plain = laspy.LasData(source.header)
    plain.points = points.copy()
    plain.write(folder / "corner.laz")
    return write_copc(points, source.header, folder / "corner.copc.laz"), folder / "corner.laz", len(points)


def test_the_copc_file_is_valid_copc(corner):
    copc, _, count = corner
    with laspy.CopcReader.open(copc) as reader:  # reads the COPC info and the octree's hierarchy
        assert reader.header.point_count == count and len(reader.query()) == count


def test_copc_gives_the_points_and_products_of_the_same_points_in_plain_laz(corner, tmp_path):
    copc, plain, count = corner
    (copc_xyz, copc_attributes), (plain_xyz, plain_attributes) = read_points(copc), read_points(plain)
    assert len(copc_xyz) == count
    order = lambda xyz: np.lexsort(xyz.T)  # noqa: E731  (the octree stores the points in another order)
    np.testing.assert_array_equal(copc_xyz[order(copc_xyz)], plain_xyz[order(plain_xyz)])
    np.testing.assert_array_equal(np.sort(copc_attributes), np.sort(plain_attributes))
    products = {}
    for name, path in (("copc", copc), ("plain", plain)):
        spec = parse_pipeline(PIPELINE.format(output=tmp_path / name, inputs=json.dumps([str(path)])))
        run_pipeline(build_plan(spec))
        products[name] = tmp_path / name
    for raster in ("dtm_1m.tif", "dsm_1m.tif"):
        with rasterio.open(products["copc"] / raster) as a, rasterio.open(products["plain"] / raster) as b:
            assert a.bounds == b.bounds
            np.testing.assert_allclose(a.read(1), b.read(1), atol=1e-6)
