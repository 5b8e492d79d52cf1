"""Density-scaled parameters, their stage options, the classified-cloud writer and the warnings (issue 17)."""

import json

import laspy
import numpy as np
import pytest
from click.testing import CliRunner

from gis import asprs
from gis.cli import cli
from pipelines.density import MAX_SCALE, pulse_density, scaled, scaled_count, spacing_scale
from pipelines.runner import build_plan, run_pipeline
from pipelines.spec import parse_pipeline

from lidar_files import write_las


def test_pulse_density_counts_first_returns_over_the_covered_area():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 200, (40_000, 2))
    xy = xy[(xy[:, 0] < 100) | (xy[:, 1] < 100)]  # a quarter without returns (water) does not dilute it
    returns = np.where(rng.random(len(xy)) < 0.25, 2, 1)  # second returns are not pulses
    assert pulse_density(xy, returns) == pytest.approx(0.75, rel=0.03)


def test_lengths_scale_with_the_spacing_within_bounds():
    assert spacing_scale(10.0) == 1.0 and spacing_scale(40.0) == 1.0  # denser: the reference values
    assert spacing_scale(2.5) == pytest.approx(2.0)
    assert spacing_scale(0.01) == MAX_SCALE and spacing_scale(0.0) == MAX_SCALE
    assert scaled(None, 1.5, 2.5) == pytest.approx(3.0) and scaled(4.0, 1.5, 2.5) == 4.0  # a given value stays
    assert scaled_count(None, 30, 2.5) == 30  # the distance scaled: as many neighbours expected
    assert 3 <= scaled_count(None, 30, 0.05) < 30 and scaled_count(7, 30, 0.05) == 7


def test_density_options_are_stage_options_checked_before_any_data(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["pipeline", "run", "lidar-to-2d", "--validate", "--stage.footprints.cluster_distance=3",
                             "--stage.footprints.min_points=12", "--stage.ground.cell=2", "--stage.trees.min_spacing=4",
                             "--stage.classify.radius=2", "--stage.noise.voxel=0"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(cli, ["pipeline", "run", "lidar-to-2d", "--validate", "--stage.footprints.cluster_distance=-1"])
    assert bad.exit_code == 1 and "cluster_distance" in bad.output and "Traceback" not in bad.output
    assert len(bad.output.strip().splitlines()) == 1


GROUND_AND_CLOUD = """
name: cloud
output: {output}
pipeline:
  - {{type: readers.las, tag: read, filename: {inputs}}}
  - {{type: filters.ground, tag: ground}}
  - {{type: writers.las, tag: las}}
  - {{type: writers.footprints, tag: footprints, inputs: [ground]}}
"""


def test_the_classified_cloud_reads_back_with_the_pipelines_classes_and_lineage(tmp_path):
    """A flat field with a 30 x 30 m block 10 m high: the field is ground, the roof is not (the generator's truth)."""
    from pipelines.stages.pointcloud import read_lineage

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, (20_000, 2))
    roof = (np.abs(xy[:, 0] - 50) < 15) & (np.abs(xy[:, 1] - 50) < 15)
    xyz = np.column_stack([xy + 700_000, np.where(roof, 10.0, 0.0) + rng.normal(0, 0.02, len(xy))])
    xyz[:, 1] += 6_000_000
    source = write_las(tmp_path / "field.laz", xyz, np.full(len(xyz), asprs.UNCLASSIFIED, dtype=np.uint8))
    output = tmp_path / "products"
    result = run_pipeline(build_plan(parse_pipeline(GROUND_AND_CLOUD.format(output=output,
                                                                             inputs=json.dumps([str(source)])))))
    las = laspy.read(output / "classified" / "field.laz")
    np.testing.assert_allclose(np.column_stack([las.x, las.y, las.z]), xyz, atol=0.006)
    classes = np.asarray(las.classification)
    assert np.all(classes[~roof] == asprs.GROUND) and not np.any(classes[roof] == asprs.GROUND)
    assert {int(c): int(n) for c, n in zip(*np.unique(classes, return_counts=True))} == result.classes
    lineage = read_lineage(output / "classified" / "field.laz")
    assert [s["type"] for s in lineage["stages"]] == ["readers.las", "filters.ground", "writers.las"]
    assert lineage["inputs"][0]["file"] == "field.laz"
    # 2 pulses/m2 is enough for footprints (1), and no point is building-class: nothing to warn about
    assert result.warnings == []


def test_each_tile_of_a_job_gets_its_own_classified_file(tmp_path):
    """Two tiles side by side: each file holds its own points once (not the halo), its lineage its own files."""
    from pipelines.stages.pointcloud import read_lineage

    rng = np.random.default_rng(5)
    sources = []
    for number, x0 in enumerate((700_000.0, 700_100.0)):
        xy = rng.uniform(0, 100, (5_000, 2)) + [x0, 6_000_000.0]
        xyz = np.column_stack([xy, rng.normal(0, 0.02, len(xy))])
        sources.append(write_las(tmp_path / f"tile{number}.laz", xyz, np.full(len(xy), 1, dtype=np.uint8)))
    output = tmp_path / "products"
    run_pipeline(build_plan(parse_pipeline(GROUND_AND_CLOUD.format(output=output,
                                                                    inputs=json.dumps([str(s) for s in sources])))))
    for source in sources:
        written, read = laspy.read(output / "classified" / source.name), laspy.read(source)
        np.testing.assert_allclose(written.x, read.x, atol=0.001)
        assert np.all(np.asarray(written.classification) == asprs.GROUND)
        files = [item["file"] for item in read_lineage(output / "classified" / source.name)["inputs"]]
        assert set(files) == {"tile0.laz", "tile1.laz"}  # its own file and the one lending it a halo


def test_turning_the_cloud_off_leaves_it_out(tmp_path):
    spec = parse_pipeline(GROUND_AND_CLOUD.format(output=tmp_path, inputs=json.dumps(["x.laz"])),
                          overrides={"las": {"enabled": False}})
    assert [stage.tag for stage in build_plan(spec).stages] == ["read", "ground", "footprints"]


def test_a_sparse_tile_warns_and_an_empty_footprint_layer_says_why(tmp_path):
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 200, (8_000, 2))  # 0.2 pulses/m2
    block = (np.abs(xy[:, 0] - 100) < 20) & (np.abs(xy[:, 1] - 100) < 20)
    xyz = np.column_stack([xy + [700_000, 6_000_000], np.where(block, 12.0, 0.0)])
    classes = np.where(block, asprs.BUILDING, asprs.GROUND).astype(np.uint8)
    source = write_las(tmp_path / "sparse.laz", xyz, classes)
    output = tmp_path / "products"
    text = GROUND_AND_CLOUD.format(output=output, inputs=json.dumps([str(source)]))
    result = run_pipeline(build_plan(parse_pipeline(text, overrides={"footprints": {"min_points": 500}})))
    messages = {(w["stage"], w["message"].split(",")[0]) for w in result.warnings}
    assert ("footprints", "0.20 pulses/m2") in messages
    assert any(w["stage"] == "footprints" and "no footprint although" in w["message"] for w in result.warnings)
    lineage = json.loads((output / "layers.gpkg.lineage.json").read_text())
    assert len(lineage["layers"]["footprints"]["warnings"]) == 2
    used = lineage["layers"]["footprints"]["tiles"][0]
    assert used["density"] == pytest.approx(0.2, abs=0.01)  # cluster_distance: 1.5 m x sqrt(10 / 0.2)
    assert used["used"]["footprints"] == {"cluster_distance": pytest.approx(1.5 * 50**0.5, abs=0.1), "min_points": 500}
    assert "no footprint although" in (output / "report.html").read_text()
