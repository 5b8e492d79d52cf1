"""readers.las: each tile gets its own points plus exactly its neighbours' points within the halo."""

import laspy
import numpy as np
import pyproj
import pytest
from lidar_files import write_las

from gis import asprs
from pipelines.spec import StageSpec
from pipelines.stages.readers import LasReader

ORIGIN = np.array([650_000.0, 6_860_000.0, 0.0])
HALO = 10.0


def _square(rng, xmin, ymin, size=100.0, count=20_000) -> np.ndarray:
    """Points of a tile whose header bounds are exactly [xmin, xmin + size] x [ymin, ymin + size]."""
    xy = rng.uniform(0, size, (count, 2))
    xy[:2] = [[0.0, 0.0], [size, size]]  # corner points so that the header's bounds are whole metres
    return np.column_stack([xy + [xmin, ymin], rng.normal(35, 1, count)]) + ORIGIN


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    """Two tiles side by side and a flight strip overlapping both, as deliveries sometimes mix them."""
    folder = tmp_path_factory.mktemp("tiles")
    rng = np.random.default_rng(5)
    points = {"a": _square(rng, 0, 0), "b": _square(rng, 100, 0), "strip": _square(rng, 50, 40, size=60.0)}
    for name, xyz in points.items():
        write_las(folder / f"{name}.las", xyz, classification=np.full(len(xyz), asprs.GROUND, dtype=np.uint8))
        stored = laspy.read(folder / f"{name}.las")  # the coordinates as the file rounds them
        points[name] = np.column_stack([stored.x, stored.y, stored.z])
    return folder, points


def test_each_tile_gets_exactly_the_points_within_its_halo(tiles, tmp_path):
    folder, points = tiles
    reader = LasReader(StageSpec(type="readers.las", tag="read", inputs=(), options={"filename": [str(folder)],
                                                                                     "halo": HALO}))
    working = pyproj.CRS("EPSG:2154")
    jobs = reader.plan(working)
    decoded = {job.path: reader.decode(job, working, tmp_path / job.name) for job in jobs}
    for job in jobs:
        tile = reader.assemble(job, decoded, working)
        xmin, ymin, xmax, ymax = job.core
        expected = [points[job.name]]
        for other in job.neighbours:
            xyz = points[other.stem]
            near = (xyz[:, 0] >= xmin - HALO) & (xyz[:, 0] < xmax + HALO) & \
                   (xyz[:, 1] >= ymin - HALO) & (xyz[:, 1] < ymax + HALO)
            expected.append(xyz[near])
        expected = np.concatenate(expected)
        assert len(tile) == len(expected), job.name
        assert np.allclose(np.sort(tile.xyz[:, 0]), np.sort(expected[:, 0]), atol=1e-9), job.name
    assert {job.name: len(job.neighbours) for job in jobs} == {"a": 2, "b": 2, "strip": 2}
