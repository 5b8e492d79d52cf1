import numpy as np
import pytest

from pipelines.raster import Grid, Raster, bin_count, bin_extreme


def test_grid_snaps_to_the_resolution_and_shares_edges():
    a = Grid.covering((651000.3, 6861000.2, 651010.0, 6861004.9), 1.0)
    assert (a.xmin, a.ymin, a.xmax, a.ymax) == (651000.0, 6861000.0, 651010.0, 6861005.0)
    assert a.shape == (5, 10)
    b = Grid.covering((651010.0, 6861000.0, 651020.0, 6861005.0), 1.0)
    assert b.xmin == a.xmax  # neighbouring tiles mosaic without seams


def test_bin_extreme_and_count():
    grid = Grid(0.0, 0.0, 2.0, 2.0, 1.0)
    x = np.array([0.2, 0.8, 1.5, 1.5, 5.0])
    y = np.array([1.5, 1.2, 0.5, 0.4, 0.5])
    z = np.array([3.0, 7.0, 1.0, -2.0, 99.0])
    high = bin_extreme(grid, x, y, z)
    low = bin_extreme(grid, x, y, z, highest=False)
    assert high[0, 0] == 7.0 and low[0, 0] == 3.0  # row 0 is the north edge
    assert high[1, 1] == 1.0 and low[1, 1] == -2.0
    assert np.isnan(high[0, 1]) and np.isnan(high[1, 0])
    assert bin_count(grid, x, y).tolist() == [[2, 0], [0, 2]]


def test_raster_sample_and_shape_check():
    grid = Grid(0.0, 0.0, 2.0, 2.0, 1.0)
    raster = Raster(np.array([[1, 2], [3, 4]], dtype=np.float32), grid, "EPSG:2154")
    assert raster.sample(np.array([1.5, 0.5, 9.0]), np.array([1.5, 0.5, 0.0])).tolist()[:2] == [2.0, 3.0]
    with pytest.raises(ValueError):
        Raster(np.zeros((3, 3), dtype=np.float32), grid, "EPSG:2154")


def test_rasterios_in_memory_rasters_do_not_warn_of_a_missing_geotransform():
    """rasterio.features silences that warning in a way threads undo; the pipelines silence it for good."""
    import subprocess
    import sys

    code = ("import numpy as np, rasterio\n"
            "import pipelines.raster\n"
            "with rasterio.MemoryFile() as memory:\n"
            "    with memory.open(driver='GTiff', width=4, height=4, count=1, dtype='uint8') as dataset:\n"
            "        dataset.write(np.zeros((1, 4, 4), dtype='uint8'))\n"
            "    with memory.open() as dataset:\n"
            "        assert dataset.transform.is_identity\n")
    result = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "NotGeoreferencedWarning" not in result.stderr
