"""Pipeline files: parsing, overrides and validation without touching data."""

import pytest
from click.testing import CliRunner

from gis.cli import cli
from gis.errors import InputError
from pipelines.runner import build_plan
from pipelines.spec import parse_overrides, parse_pipeline

PIPELINE = """
name: t
output: /nonexistent/products
pipeline:
  - {type: readers.las, tag: read, filename: /nonexistent/tiles}
  - {type: filters.ground, tag: ground, cell: 1.0}
  - {type: writers.dtm, tag: dtm, resolution: 0.5}
  - {type: writers.contours, tag: contours, inputs: [ground], interval: 2}
"""


def test_parse_defaults_inputs_to_the_previous_stage():
    spec = parse_pipeline(PIPELINE)
    assert [s.tag for s in spec.stages] == ["read", "ground", "dtm", "contours"]
    assert spec.stage("ground").inputs == ("read",)
    assert spec.stage("dtm").inputs == ("ground",)
    assert spec.stage("contours").options == {"interval": 2}


def test_overrides_replace_one_option_of_one_stage():
    overrides = parse_overrides(["--stage.ground.cell=2.5", "--stage.dtm.resolution=1"])
    spec = parse_pipeline(PIPELINE, overrides=overrides)
    assert spec.stage("ground").options["cell"] == 2.5
    plan = build_plan(spec)
    assert plan.stages[2].options.resolution == 1.0  # an int is a valid float


def test_validate_builds_every_stage_without_touching_data():
    plan = build_plan(parse_pipeline(PIPELINE))
    assert [s.kind for s in plan.stages] == ["reader", "filter", "writer", "writer"]
    assert plan.jobs == []


@pytest.mark.parametrize("text, message", [
    ("pipeline: []", "non-empty 'pipeline:'"),
    ("pipeline: [{tag: x}]", "stage 1 needs a 'type'"),
    ("pipeline: [{type: readers.las, filename: a}, {type: writers.dtm, inputs: [nope]}]", "input 'nope' is not the tag"),
    ("pipeline: [{type: readers.las, filename: a, tag: a}, {type: writers.dtm, tag: a}]", "the tag 'a' is used twice"),
])
def test_bad_pipeline_files(text, message):
    with pytest.raises(InputError, match=message):
        parse_pipeline(text)


@pytest.mark.parametrize("stage, message", [
    ("{type: writers.dtm, resolutoin: 1}", "unknown option 'resolutoin'"),
    ("{type: writers.dtm, resolution: fine}", "option 'resolution' must be float"),
    ("{type: writers.dtm, resolution: -1}", "'resolution' must be > 0"),
    ("{type: writers.nothing}", "unknown stage type 'writers.nothing'"),
    ("{type: filters.ground, mode: sometimes}", "auto, always or never"),
])
def test_bad_stages_are_refused_by_validation(stage, message):
    text = f"pipeline: [{{type: readers.las, filename: a}}, {stage}, {{type: writers.dsm, tag: last}}]"
    with pytest.raises(InputError, match=message):
        build_plan(parse_pipeline(text))


def test_bad_override_syntax():
    with pytest.raises(InputError, match="--stage.TAG.OPTION=VALUE"):
        parse_overrides(["--stage.ground=1"])
    with pytest.raises(InputError, match="no stage is tagged 'grond'"):
        parse_pipeline(PIPELINE, overrides={"grond": {"cell": 1}})


def test_cli_validate_and_list(tmp_path):
    path = tmp_path / "p.yml"
    path.write_text(PIPELINE, encoding="utf-8")
    result = CliRunner().invoke(cli, ["pipeline", "run", str(path), "--validate", "--stage.ground.cell=2"])
    assert result.exit_code == 0 and "valid (4 stages" in result.output
    assert "lidar-to-2d" in CliRunner().invoke(cli, ["pipeline", "list"]).output
    shipped = CliRunner().invoke(cli, ["pipeline", "run", "lidar-to-2d", "--validate"])
    assert shipped.exit_code == 0, shipped.output


@pytest.mark.parametrize("type_name, message", [
    ("pipelines.stages.rasters:RasterWriter", "is an abstract base class (surface() not implemented); name one of "
                                              "its concrete stages (writers.dtm, writers.dsm"),
    ("pipelines.stages.vectors:VectorWriter", "is an abstract base class (features() not implemented)"),
    ("pipelines.stages.base:Stage", "is an abstract base class (process() not implemented)"),
    ("pipelines.spec:StageSpec", "is not a stage class; name a subclass of pipelines.stages.base.Stage"),
    ("os.path:join", "is not a stage class"),
])
def test_validation_refuses_what_cannot_run(tmp_path, type_name, message):
    # Such a stage used to pass --validate, then die mid-run (NotImplementedError, TypeError) with a traceback.
    path = tmp_path / "p.yml"
    path.write_text(f"pipeline: [{{type: readers.las, filename: a}}, {{type: '{type_name}', tag: mine}}, "
                    f"{{type: writers.dsm, tag: last}}]", encoding="utf-8")
    result = CliRunner().invoke(cli, ["pipeline", "run", str(path), "--validate"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {path}: stage 'mine': stage type '{type_name}' ")
    assert message in result.output and result.output.count("\n") == 1 and "Traceback" not in result.output


def test_pipeline_variables_are_values_not_yaml(tmp_path):
    text = "pipeline:\n  - {type: readers.las, filename: '${TILES}'}\n  - {type: writers.dsm}\n"
    spec = parse_pipeline(text, environ={"TILES": "/data/lidar #2\n  - {type: writers.dtm}"})
    assert [s.type for s in spec.stages] == ["readers.las", "writers.dsm"]
    assert spec.stages[0].options["filename"] == "/data/lidar #2\n  - {type: writers.dtm}"
