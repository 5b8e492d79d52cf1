"""The real IGN LiDAR HD tiles pass through every reader the project has."""

import laspy
import numpy as np
import pytest

from gis.errors import InputError
from pipelines.readers.las import inspect_lidar

pytestmark = pytest.mark.ign


def test_real_tiles_are_read_with_their_crs_and_classes(ign_tiles):
    for tile in ign_tiles:
        info = inspect_lidar(tile)
        assert info.horizontal_crs.to_epsg() == 2154, tile.name
        assert info.point_count > 50_000
        assert {2, 6} <= set(info.classes) and sum(info.classes.values()) == info.point_count
        xmin, ymin, zmin, xmax, ymax, zmax = info.bounds
        assert 100_000 < xmin < xmax < 1_300_000 and 6_000_000 < ymin < ymax < 7_200_000
        assert -50 < zmin < zmax < 500


def test_real_tiles_stream_in_chunks_like_a_whole_read(ign_tiles, monkeypatch):
    import pipelines.readers.las as las_reader

    monkeypatch.setattr(las_reader, "CHUNK", 10_000)
    for tile in ign_tiles:
        whole = laspy.read(tile)
        info = inspect_lidar(tile)
        assert info.classes == {int(c): int(n) for c, n in zip(*np.unique(whole.classification, return_counts=True))}


def test_a_truncated_real_tile_is_a_clear_error(ign_tiles, tmp_path):
    data = ign_tiles[0].read_bytes()
    broken = tmp_path / "truncated.laz"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        inspect_lidar(broken)
