"""Placement: working CRS -> ECEF with the geoid applied, checked against PROJ and the grid file itself."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio

from gis.errors import InputError
from tiles.geo import HeightModel, Placement

LAMBERT93 = pyproj.CRS("EPSG:2154+5720")  # Lambert-93 + NGF-IGN69, as the sample district's header says
# A known point of the sample district (its south-west quarter), 35 m above the geoid.
KNOWN = (651000.0, 6861000.0, 35.0)
# PROJ's own pipeline through the grid, written out independently of tiles/geo.py: Lambert-93 inverse,
# the geoid's separation added to the height, geodetic to cartesian.
LAMBERT93_PROJ = "+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80"


def proj_reference(grid: Path) -> pyproj.Transformer:
    return pyproj.Transformer.from_pipeline(
        f"+proj=pipeline +step +inv {LAMBERT93_PROJ} +step +proj=vgridshift +grids={grid} +multiplier=1 "
        "+step +proj=cart +ellps=GRS80")


def write_gtx(path: Path, south: float, west: float, rows: int, cols: int, step: float, value: float) -> Path:
    """A constant geoid grid in NOAA's GTX format (big-endian header, rows from south to north)."""
    header = struct.pack(">4d2i", south, west, step, step, rows, cols)
    path.write_bytes(header + np.full(rows * cols, value, dtype=">f4").tobytes())
    return path


@pytest.fixture(scope="module")
def placement() -> Placement:
    return Placement(LAMBERT93, HeightModel.resolve())


def test_known_point_to_ecef_and_back_within_a_centimetre(placement):
    x, y, z = (np.array([v]) for v in KNOWN)
    ecef = placement.to_ecef(x, y, z)
    expected = np.array(proj_reference(placement.model.grid).transform(*KNOWN))
    assert np.linalg.norm(ecef[0] - expected) < 0.01
    assert 4.19e6 < ecef[0, 0] < 4.21e6 and 4.77e6 < ecef[0, 2] < 4.79e6  # Paris, on the globe
    back = placement.from_ecef(ecef)[0]
    assert np.abs(back - np.array(KNOWN)).max() < 0.01


def test_geoid_separation_is_the_grid_interpolated(placement):
    """The separation applied equals a bilinear interpolation of the grid file read with GDAL."""
    xs = np.array([650800.0, 651000.0, 651199.0])
    ys = np.array([6860800.0, 6861000.0, 6861199.0])
    lon, lat = pyproj.Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True).transform(xs, ys)
    with rasterio.open(placement.model.grid) as grid:
        values = grid.read(1).astype(float)
        col, row = ~grid.transform @ (lon, lat)  # pixel coordinates; centres at +0.5
    col, row = np.asarray(col) - 0.5, np.asarray(row) - 0.5
    c0, r0 = np.floor(col).astype(int), np.floor(row).astype(int)
    tc, tr = col - c0, row - r0
    expected = ((values[r0, c0] * (1 - tc) + values[r0, c0 + 1] * tc) * (1 - tr)
                + (values[r0 + 1, c0] * (1 - tc) + values[r0 + 1, c0 + 1] * tc) * tr)
    separation = placement.separation(xs, ys)
    assert 40 < separation.min() < separation.max() < 50  # EGM96 over Paris: about 44.6 m
    assert np.abs(separation - expected).max() < 0.001
    ellipsoidal = placement.to_ecef(xs, ys, np.zeros(3))
    plain = np.column_stack(pyproj.Transformer.from_crs("EPSG:2154", "EPSG:4978", always_xy=True)
                            .transform(xs, ys, np.zeros(3)))
    assert np.allclose(np.linalg.norm(ellipsoidal, axis=1) - np.linalg.norm(plain, axis=1), expected, atol=0.01)


def test_fast_local_placement_matches_proj_within_a_millimetre(placement):
    rng = np.random.default_rng(3)
    x = rng.uniform(650800, 651800, 20000)
    y = rng.uniform(6860800, 6861800, 20000)
    z = rng.uniform(25, 90, 20000)
    frame = placement.local_frame((650800, 6860800, 651800, 6861800))
    local = placement.to_local(frame, x, y, z)
    ecef = np.column_stack(proj_reference(placement.model.grid).transform(x, y, z))
    assert np.abs(frame.to_ecef(local) - ecef).max() < 0.001
    assert np.abs(local[:, 2]).max() < 200  # up is up: heights near the frame's origin


def test_a_configured_finer_grid_is_used(tmp_path):
    grid = write_gtx(tmp_path / "local.gtx", south=48.0, west=1.5, rows=21, cols=21, step=0.1, value=50.0)
    placement = Placement(LAMBERT93, HeightModel.resolve(geoid=grid))
    assert np.allclose(placement.separation(np.array([KNOWN[0]]), np.array([KNOWN[1]])), 50.0, atol=1e-6)
    assert placement.model.describe()["geoid"] == "local.gtx"
    assert len(placement.model.describe()["geoid_sha256"]) == 64


def test_a_grid_that_does_not_cover_the_data_is_refused(tmp_path):
    corsica = write_gtx(tmp_path / "corsica.gtx", south=41.3, west=8.5, rows=11, cols=11, step=0.1, value=50.0)
    placement = Placement(LAMBERT93, HeightModel.resolve(geoid=corsica))
    with pytest.raises(InputError, match="corsica.gtx: does not cover the data"):
        placement.check_covers((650800, 6860800, 651200, 6861200))


def test_ellipsoidal_heights_apply_no_geoid():
    placement = Placement(LAMBERT93, HeightModel.resolve(heights="ellipsoidal"))
    assert placement.separation(np.array([KNOWN[0]]), np.array([KNOWN[1]]))[0] == pytest.approx(0.0, abs=1e-6)
    assert placement.model.describe()["geoid"].startswith("none")


def test_a_missing_grid_or_bad_heights_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        HeightModel.resolve(geoid=tmp_path / "raf20.gtx")
    with pytest.raises(InputError, match="--heights"):
        HeightModel.resolve(heights="geoidal")
