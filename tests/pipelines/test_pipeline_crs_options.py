"""The CRS options and product safety of `lutece pipeline run`: northing-first CRSs both ways, --crs-in over a
header's CRS, a working CRS in feet, lutece.yml's tiling.halo, and products this pipeline did not write."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pyproj
import pytest
import rasterio
from click.testing import CliRunner
from lidar_files import write_las

from gis.cli import cli
from pipelines.spec import StageSpec
from pipelines.stages.readers import LasReader

PIPELINE = """
name: {name}
output: {output}
pipeline:
  - {{type: readers.las, tag: read, filename: {inputs}}}
  - {{type: writers.dsm, tag: dsm, resolution: 1.0}}
"""


def grid(x0, y0, width=60.0, height=30.0, step=1.0, z=35.0):
    """A rectangle of points, wider than high, so that an axis swap shows in the bounds."""
    xs, ys = np.meshgrid(np.arange(x0, x0 + width + step / 2, step), np.arange(y0, y0 + height + step / 2, step))
    return np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, z)])


def run(tmp_path, inputs, *extra, name="p", config=None):
    """`lutece pipeline run` in-process (the imports once for the module): its exit code and stderr."""
    pipeline = tmp_path / f"{name}.yml"
    pipeline.write_text(PIPELINE.format(name=name, output=tmp_path / "out", inputs=[str(p) for p in inputs]),
                        encoding="utf-8")
    head = ["-q"] + (["--config", str(config)] if config else [])
    result = CliRunner().invoke(cli, [*head, "pipeline", "run", str(pipeline), *extra])
    return SimpleNamespace(returncode=result.exit_code, stderr=result.stderr)


def one_line_error(result, *fragments):
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("source, working, lonlat", [
    ("EPSG:2180", "EPSG:32634", (21.0, 52.2)),  # Poland, northing first, into UTM 34N
    ("EPSG:32633", "EPSG:3006", (16.0, 59.3)),  # Sweden: UTM 33N into SWEREF99 TM, northing first
])
def test_northing_first_crs_either_way(tmp_path, source, working, lonlat):
    x0, y0 = pyproj.Transformer.from_crs("EPSG:4326", source, always_xy=True).transform(*lonlat)
    xyz = grid(round(x0), round(y0))
    path = write_las(tmp_path / "tile.las", xyz, crs=source)
    reader = LasReader(StageSpec("readers.las", "read", (), {"filename": [str(path)], "halo": 0.0}))
    target = pyproj.CRS(working)
    job, = reader.plan(target)
    decoded = reader.decode(job, target, tmp_path / "decoded")
    got = np.load(decoded / "xyz.npy")
    # the oracle: PROJ itself, easting first, as LAS stores it
    ex, ey = pyproj.Transformer.from_crs(source, working, always_xy=True).transform(xyz[:, 0], xyz[:, 1])
    assert np.abs(got[:, 0] - ex).max() < 0.01 and np.abs(got[:, 1] - ey).max() < 0.01
    xmin, ymin, xmax, ymax = job.core
    assert 60 <= xmax - xmin <= 64 and 30 <= ymax - ymin <= 34  # wider than high, as the data


def test_crs_in_over_the_headers_crs_needs_crs_override(tmp_path):
    # a file labelled Lambert-93 whose coordinates are in fact NTF Lambert II (a mislabelled delivery)
    x0, y0 = pyproj.Transformer.from_crs("EPSG:2154", "EPSG:27572", always_xy=True).transform(651000.0, 6861000.0)
    path = write_las(tmp_path / "tile.las", grid(round(x0), round(y0)), crs="EPSG:2154")
    one_line_error(run(tmp_path, [path], "--crs-in", "EPSG:27572"), "tile.las", "--crs-in EPSG:27572",
                   "RGF93 v1 / Lambert-93", "--crs-override")
    assert not (tmp_path / "out" / "dsm_1m.tif").exists()
    result = run(tmp_path, [path], "--crs-in", "EPSG:27572", "--crs-override")
    assert result.returncode == 0, result.stderr
    with rasterio.open(tmp_path / "out" / "dsm_1m.tif") as dsm:  # placed where NTF Lambert II puts it
        assert abs(dsm.bounds.left - 651000.0) < 5 and abs(dsm.bounds.bottom - 6861000.0) < 5
    lineage = json.loads((tmp_path / "out" / "dsm_1m.tif.lineage.json").read_text())["layers"]["dsm"]
    assert lineage["inputs"][0]["crs"] == "NTF (Paris) / Lambert zone II"
    assert run(tmp_path, [path], "--crs-in", "EPSG:2154").returncode == 0  # the header's own CRS: no conflict


def test_a_working_crs_in_feet_is_refused(tmp_path):
    config = tmp_path / "lutece.yml"
    config.write_text("crs: EPSG:2222\n", encoding="utf-8")
    path = write_las(tmp_path / "tile.las", grid(651000.0, 6861000.0))
    one_line_error(run(tmp_path, [path], config=config), "EPSG:2222", "not projected in metres", "crs: auto")


def test_tiling_halo_of_lutece_yml_is_the_readers_halo(tmp_path):
    config = tmp_path / "lutece.yml"
    config.write_text("tiling:\n  halo: 7.5\n", encoding="utf-8")
    path = write_las(tmp_path / "tile.las", grid(651000.0, 6861000.0))
    assert run(tmp_path, [path], config=config).returncode == 0
    lineage = json.loads((tmp_path / "out" / "dsm_1m.tif.lineage.json").read_text())["layers"]["dsm"]
    assert lineage["stages"][0]["options"]["halo"] == 7.5


def test_products_it_did_not_write_need_overwrite(tmp_path):
    path = write_las(tmp_path / "tile.las", grid(651000.0, 6861000.0))
    (tmp_path / "out").mkdir()
    foreign = tmp_path / "out" / "dsm_1m.tif"
    foreign.write_bytes(b"someone else's raster")
    one_line_error(run(tmp_path, [path]), "dsm_1m.tif", "no earlier run of the pipeline 'p'", "--overwrite")
    assert foreign.read_bytes() == b"someone else's raster"
    assert run(tmp_path, [path], "--overwrite").returncode == 0
    write_las(path, grid(651000.0, 6861000.0, z=36.0))
    assert run(tmp_path, [path]).returncode == 0  # its own product: replaced by a rerun
    one_line_error(run(tmp_path, [path], name="other"), "dsm_1m.tif", "'other'", "--overwrite")


def test_whose_product_a_sidecar_says(tmp_path):
    from pipelines.plan import LEGACY, written_by

    product = tmp_path / "dsm_1m.tif"
    product.write_bytes(b"")
    sidecar = tmp_path / "dsm_1m.tif.lineage.json"
    assert written_by(product) is None  # no sidecar: nobody's
    sidecar.write_text(json.dumps({"pipeline": "lidar-to-2d", "job_key": "k", "product": product.name}))
    assert written_by(product) == "lidar-to-2d"
    sidecar.write_text(json.dumps({"job_key": "k", "product": product.name, "layers": {"dsm": {"pipeline": "p2"}}}))
    assert written_by(product) == "p2"  # the 2D products' layers named it before the sidecar did
    sidecar.write_text(json.dumps({"job_key": "k", "product": product.name, "layers": {"dsm": {}}}))
    assert written_by(product) == LEGACY  # the buildings' and 3D Tiles' sidecars of an earlier release
    sidecar.write_text(json.dumps({"inputs": [], "tiler": {}}))  # `lutece tiles pointcloud`'s: not a pipeline's
    assert written_by(product) is None
    sidecar.write_text("{broken")
    assert written_by(product) is None
