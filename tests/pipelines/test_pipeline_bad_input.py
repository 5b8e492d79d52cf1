"""Bad lidar input: one clear line naming the file and the fix, exit 1, no product, other tiles kept."""

import subprocess
import sys

import laspy
import numpy as np
import pytest

from lidar_files import LEGACY_POINT_COUNT_OFFSET, X_SCALE_OFFSET, patch_header, write_las

PIPELINE = """
output: {output}
pipeline:
  - {{type: readers.las, tag: read, filename: {inputs}}}
  - {{type: writers.dsm, tag: dsm, resolution: 1.0}}
"""


def grid_points(x0=651000.0, y0=6861000.0, size=30.0, step=0.5, z=35.0):
    xs, ys = np.meshgrid(np.arange(x0, x0 + size, step), np.arange(y0, y0 + size, step))
    return np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, z)])


def run(tmp_path, inputs, *extra):
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(PIPELINE.format(output=tmp_path / "out", inputs=[str(p) for p in inputs]), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "gis", "-q", "pipeline", "run", str(pipeline), *extra],
                          capture_output=True, text=True)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def products(tmp_path):
    return sorted(p.name for p in (tmp_path / "out").glob("*.tif")) if (tmp_path / "out").exists() else []


def test_good_file_runs(tmp_path):
    result = run(tmp_path, [write_las(tmp_path / "ok.las", grid_points())])
    assert result.returncode == 0, result.stderr
    assert products(tmp_path) == ["dsm_1m.tif"]


def test_no_crs_needs_crs_in(tmp_path):
    path = write_las(tmp_path / "nocrs.las", grid_points(), crs=None)
    assert_one_line_error(run(tmp_path, [path]), "nocrs.las", "has no CRS", "--crs-in")
    assert products(tmp_path) == []
    assert run(tmp_path, [path], "--crs-in", "EPSG:2154").returncode == 0


def test_geographic_crs(tmp_path):
    points = np.column_stack([np.linspace(2.3, 2.31, 100), np.linspace(48.85, 48.86, 100), np.full(100, 35.0)])
    path = write_las(tmp_path / "wgs84.las", points, crs="EPSG:4326")
    assert_one_line_error(run(tmp_path, [path]), "wgs84.las", "geographic")


def test_zero_points(tmp_path):
    path = write_las(tmp_path / "empty.las", np.empty((0, 3)))
    assert_one_line_error(run(tmp_path, [path]), "empty.las", "no points")


def test_scale_zero(tmp_path):
    path = patch_header(write_las(tmp_path / "scale.las", grid_points()), X_SCALE_OFFSET, "<d", 0.0)
    assert_one_line_error(run(tmp_path, [path]), "scale.las", "scale")


def test_absurd_coordinates(tmp_path):
    path = patch_header(write_las(tmp_path / "absurd.las", grid_points()), X_SCALE_OFFSET, "<d", 1e9)
    assert_one_line_error(run(tmp_path, [path]), "absurd.las", "absurd")


def test_header_count_disagrees_with_records(tmp_path):
    path = write_las(tmp_path / "count.las", grid_points(), point_format=3)  # LAS 1.2: the legacy count is the count
    count = laspy.read(path).header.point_count
    patch_header(path, LEGACY_POINT_COUNT_OFFSET, "<I", count + 500)
    assert_one_line_error(run(tmp_path, [path]), "count.las", "header")


def test_truncated_laz(tmp_path, district):
    data = (district / "district-nocrs.laz").read_bytes()
    path = tmp_path / "truncated.laz"
    path.write_bytes(data[: len(data) // 3])
    assert_one_line_error(run(tmp_path, [path], "--crs-in", "EPSG:2154"), "truncated.laz", "truncated")
    assert products(tmp_path) == []


def test_tiles_in_different_crs(tmp_path):
    a = write_las(tmp_path / "a.las", grid_points())
    b = write_las(tmp_path / "b.las", grid_points(x0=2000.0, y0=6000.0), crs="EPSG:3857")
    assert_one_line_error(run(tmp_path, [a, b]), "different CRSs", "a.las", "b.las")


def test_a_bad_tile_keeps_the_good_tiles_work(tmp_path, district):
    good = write_las(tmp_path / "good.las", grid_points())
    data = (district / "district-nocrs.laz").read_bytes()
    bad = tmp_path / "bad.laz"
    bad.write_bytes(data[: len(data) // 3])
    result = run(tmp_path, [good, bad], "--crs-in", "EPSG:2154")
    assert_one_line_error(result, "bad.laz", "1 of 2 tiles failed")
    assert products(tmp_path) == []
    done = list((tmp_path / "out").glob(".lutece-work/tiles/*/done.json"))
    assert len(done) == 1  # the good tile's work is kept for the rerun
