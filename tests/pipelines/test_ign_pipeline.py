"""The shipped lidar-to-2d pipeline, end to end, on the real IGN tiles with IGN's classes removed (issue 17).

Each tile is copied with every point unclassified, as a raw survey, and run
through ``lutece pipeline run lidar-to-2d`` (the command line, the shipped
definition, its defaults). The truth is IGN's own classification of the same
points; the terrain reference is scipy's Delaunay-linear interpolation
(:mod:`ign_checks`). The sparse tile (0.3 points/m2) is cropped to its
central 500 x 500 m to keep the test short. Thresholds are the issue's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import laspy
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from gis import asprs
from gis.cli import cli
from ign_checks import building_clusters, directional_ratio, inner, read_raster, tin_on

pytestmark = [pytest.mark.ign, pytest.mark.slow]

# Issue 17's targets, by tile: ground agreement, building recall.
TARGETS = {"dense": (0.97, 0.90), "sparse": (0.93, 0.70)}
MAX_SHARE_ABOVE = 0.005  # of the DTM's cells more than 1 m above the DTM of IGN's ground
TERRAIN_P95, TERRAIN_MAX = 0.10, 1.0  # m, |DTM - TIN of the same ground points|
# No directional bias: mean |x-gradient| / mean |y-gradient| of that difference. The issue sets no number; a
# row/column fill's cross-hatching puts the ratio far from 1 along whichever direction dominates.
DIRECTION_RATIO = (0.8, 1.25)
CROP = 500.0  # metres: the side of the sparse tile's crop
EDGE = 5.0  # metres: cells this close to the extent's edge are left out (no neighbour tile lends them points)
IGNORED = (asprs.IGN_ARTEFACT, asprs.IGN_VIRTUAL, *asprs.NOISES)  # IGN's points that are neither ground nor not


@dataclass
class Run:
    kind: str
    raw: Path  # the unclassified copy the pipeline read
    output: Path
    truth: np.ndarray  # IGN's class of each point of raw
    xyz: np.ndarray
    stderr: str


def _raw_copy(source: Path, target: Path, crop: float | None) -> tuple[Path, np.ndarray]:
    las = laspy.read(source)
    if crop is not None:
        centre = (las.header.mins[:2] + las.header.maxs[:2]) / 2
        low, high = np.floor(centre - crop / 2), np.floor(centre + crop / 2)
        keep = (las.x >= low[0]) & (las.x < high[0]) & (las.y >= low[1]) & (las.y < high[1])
        las.points = las.points[np.asarray(keep)]
    truth = np.asarray(las.classification).copy()
    las.classification[:] = asprs.UNCLASSIFIED
    las.write(target)
    return target, truth


def _density(path: Path) -> float:
    header = laspy.open(path).header
    return header.point_count / float(np.prod(header.maxs[:2] - header.mins[:2]))


@pytest.fixture(scope="module", params=["dense", "sparse"])
def run(request, ign_tiles, tmp_path_factory) -> Run:
    dense = request.param == "dense"
    tiles = [tile for tile in ign_tiles if (_density(tile) >= 10) == dense]
    if not tiles:
        pytest.skip(f"no {request.param} IGN tile in the shared folder")
    folder = tmp_path_factory.mktemp(request.param)
    raw, truth = _raw_copy(tiles[0], folder / f"{request.param}.laz", None if dense else CROP)
    output = folder / "products"
    result = CliRunner().invoke(cli, ["-q", "pipeline", "run", "lidar-to-2d", "--input", str(raw),
                                      "--output", str(output)])
    assert result.exit_code == 0, result.output
    las = laspy.read(raw)
    return Run(request.param, raw, output, truth, np.column_stack([las.x, las.y, las.z]), result.stderr)


def _classified(run: Run) -> laspy.LasData:
    files = sorted((run.output / "classified").glob("*.laz"))
    assert [f.name for f in files] == [run.raw.name]
    return laspy.read(files[0])


def test_ground_and_buildings_agree_with_ign(run):
    classes = np.asarray(_classified(run).classification)
    judged = ~np.isin(run.truth, IGNORED)
    ground = np.mean((run.truth == asprs.GROUND)[judged] == (classes == asprs.GROUND)[judged])
    recall = np.mean(classes[run.truth == asprs.BUILDING] == asprs.BUILDING)
    print(f"{run.kind}: ground agreement {ground:.4f}, building recall {recall:.3f}")
    least_ground, least_recall = TARGETS[run.kind]
    assert ground >= least_ground
    assert recall >= least_recall


def test_dtm_keeps_roofs_out_of_the_terrain(run):
    dtm = read_raster(run.output / "dtm_1m.tif")
    reference = tin_on(dtm, run.xyz[run.truth == asprs.GROUND])
    cells = np.isfinite(reference) & inner(dtm, EDGE)
    above = (dtm.data - reference)[cells]
    share = np.mean(above > 1.0)
    print(f"{run.kind}: {100 * share:.2f} % of the DTM's cells > 1 m above IGN's ground (highest {above.max():.2f} m)")
    assert share <= MAX_SHARE_ABOVE


@pytest.mark.parametrize("product", ["dtm_0.5m.tif", "dtm_1m.tif"])
def test_terrain_is_the_tin_of_its_ground_points_without_directional_artefacts(run, product):
    las = _classified(run)
    ground = np.column_stack([las.x, las.y, las.z])[np.asarray(las.classification) == asprs.GROUND]
    dtm = read_raster(run.output / product)
    reference = tin_on(dtm, ground)
    cells = np.isfinite(reference) & inner(dtm, EDGE)
    difference = np.where(cells, dtm.data - reference, np.nan)
    error = np.abs(difference[cells])
    ratio = directional_ratio(difference)
    print(f"{run.kind} {product}: p95 {np.percentile(error, 95):.3f} m, max {error.max():.2f} m, "
          f"x/y gradient ratio {ratio:.3f}")
    assert np.percentile(error, 95) <= TERRAIN_P95
    assert error.max() <= TERRAIN_MAX
    assert DIRECTION_RATIO[0] <= ratio <= DIRECTION_RATIO[1]


def test_footprints_are_found_for_ign_buildings(run):
    footprints = gpd.read_file(run.output / "layers.gpkg", layer="footprints")
    buildings = building_clusters(run.xyz[run.truth == asprs.BUILDING][:, :2])
    covered = shapely.union_all(footprints.geometry.values) if len(footprints) else shapely.Polygon()
    found = sum(covered.intersects(shapely.MultiPoint(points)) for points in buildings)
    print(f"{run.kind}: {len(footprints)} footprints; {found} of IGN's {len(buildings)} buildings have one")
    assert buildings, "the tile should hold IGN buildings"
    # The issue asks that footprints be found and counted; at least half of IGN's buildings is this test's floor.
    assert found >= 0.5 * len(buildings)


def test_the_classified_cloud_holds_the_pipelines_classes_and_lineage(run):
    from pipelines.stages.pointcloud import read_lineage

    las = _classified(run)
    np.testing.assert_allclose(np.column_stack([las.x, las.y, las.z]), run.xyz, atol=0.0006)
    summaries = [json.loads(p.read_text()) for p in (run.output / ".lutece-work" / "tiles").glob("*/done.json")]
    pipeline_classes = {int(code): count for code, count in summaries[0]["classes"].items()}
    codes, counts = np.unique(np.asarray(las.classification), return_counts=True)
    assert dict(zip(codes.tolist(), counts.tolist())) == pipeline_classes
    lineage = read_lineage(run.output / "classified" / run.raw.name)
    assert lineage["pipeline"] == "lidar-to-2d"
    assert {s["type"] for s in lineage["stages"]} >= {"readers.las", "filters.ground", "filters.classify", "writers.las"}
    source = lineage["inputs"][0]
    assert (source["file"], source["sha256"]) == (run.raw.name, hashlib.sha256(run.raw.read_bytes()).hexdigest())
    assert "/" not in json.dumps(lineage["inputs"])  # the public view: file names, no folder


def test_a_sparse_tile_warns_on_stderr_in_lineage_and_in_the_report(run):
    if run.kind != "sparse":
        assert "Warning:" not in run.stderr  # a dense tile has all a product needs
        return
    assert "dtm_0.5m.tif needs" in run.stderr and "the trees layer needs" in run.stderr
    lineage = json.loads((run.output / "dtm_0.5m.tif.lineage.json").read_text())
    assert any("pulses/m2" in w["message"] for w in lineage["layers"]["dtm"]["warnings"])
    report = (run.output / "report.html").read_text()
    assert "dtm_0.5m.tif needs" in report and "pulses/m²" in report and "horizontal CRS" in report
