"""Bad input to `lutece tiles pointcloud`: one clear Error line, exit 1, and no tileset left behind."""

from __future__ import annotations

import shutil

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner
from test_geo import write_gtx

from gis.cli import cli
from tiles.cli import tiles


@pytest.fixture(scope="module")
def lutece():
    """The root command with the tiles group, as the entry point gives it once installed."""
    if cli.get_command(None, "tiles") is None:
        cli.add_command(tiles)
    return cli


def run_failing(lutece, tmp_path, *args) -> str:
    out = tmp_path / "out"
    result = CliRunner().invoke(lutece, ["tiles", "pointcloud", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert not out.exists() or args[-1] != out or (out / "keep").exists()
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.lineage.json"))
    return errors[0]


def test_streets_product_without_a_streets_layer(lutece, district, tmp_path):
    error = run_failing(lutece, tmp_path, district / "district.laz", tmp_path / "out", "--product", "streets")
    assert "--streets" in error


def test_streets_file_without_the_layer_or_the_width(lutece, district, tmp_path):
    error = run_failing(lutece, tmp_path, district / "district.laz", tmp_path / "out", "--product", "streets",
                        "--streets", district / "district.gpkg", "--streets-layer", "roads")
    assert "no layer 'roads'" in error
    error = run_failing(lutece, tmp_path, district / "district.laz", tmp_path / "out", "--product", "streets",
                        "--streets", district / "district.gpkg", "--width-field", "largeur")
    assert "no field 'largeur'" in error


def test_streets_whose_corridors_miss_the_lidar(lutece, district, tmp_path):
    far = gpd.GeoDataFrame({"width_m": [12.0]}, geometry=[shapely.LineString([(700000, 6600000), (700100, 6600000)])],
                           crs="EPSG:2154")
    far.to_file(tmp_path / "far.gpkg", layer="streets")
    error = run_failing(lutece, tmp_path, district / "district.laz", tmp_path / "out", "--product", "streets",
                        "--streets", tmp_path / "far.gpkg")
    assert "do not reach the lidar" in error


def test_a_geoid_grid_that_does_not_cover_the_data(lutece, district, tmp_path):
    corsica = write_gtx(tmp_path / "corsica.gtx", south=41.3, west=8.5, rows=11, cols=11, step=0.1, value=50.0)
    error = run_failing(lutece, tmp_path, district / "district.laz", tmp_path / "out", "--geoid", corsica)
    assert "corsica.gtx: does not cover the data" in error and "--heights ellipsoidal" in error


def test_an_output_that_exists_is_left_alone(lutece, district, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("mine")
    error = run_failing(lutece, tmp_path, district / "district.laz", tmp_path / "out")
    assert "already exists" in error and "--overwrite" in error
    assert (tmp_path / "out" / "keep").read_text() == "mine"


def test_a_file_without_crs_or_truncated(lutece, district, tmp_path):
    error = run_failing(lutece, tmp_path, district / "district-nocrs.laz", tmp_path / "out")
    assert "no CRS" in error and "--crs-in" in error
    truncated = tmp_path / "truncated.laz"
    truncated.write_bytes((district / "district.laz").read_bytes()[:200_000])
    error = run_failing(lutece, tmp_path, truncated, tmp_path / "out")
    assert "truncated.laz" in error


def test_a_failure_half_way_leaves_no_partial_tileset(lutece, district, tmp_path):
    """The second file's header is sound but its points end early: the first file's subtree must not survive."""
    broken = tmp_path / "broken.laz"
    broken.write_bytes((district / "district-unclassified.laz").read_bytes()[:150_000])
    shutil.copy(district / "district.laz", tmp_path / "a.laz")
    error = run_failing(lutece, tmp_path, tmp_path / "a.laz", broken, tmp_path / "out")
    assert "broken.laz" in error
    assert not (tmp_path / "out").exists()


def test_crs_in_over_a_header_that_states_another_crs(lutece, district, tmp_path):
    error = run_failing(lutece, tmp_path, district / "district.laz", tmp_path / "out", "--crs-in", "EPSG:27572")
    assert "district.laz" in error and "--crs-in EPSG:27572" in error and "Lambert-93" in error
