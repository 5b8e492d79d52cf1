"""The generator itself: determinism, atomic output, errors."""

import subprocess
import sys

import pytest

from gis.errors import InputError, OutputExistsError
from pipelines.synthetic import generate as generate_module
from pipelines.synthetic.generate import DistrictSpec, generate_district

SMALL = DistrictSpec(size=200.0, density=2.0, seed=7, variant_size=60.0)
BYTE_IDENTICAL = ["district.laz", "district-unclassified.laz", "district-nocrs.laz", "truth-dtm.tif",
                  "hotel-de-ville.ifc", "hotel-de-ville-indoor.geojson", "district.gpkg", "truth.gpkg"]


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    root = tmp_path_factory.mktemp("twice")
    first = generate_district(root / "a", SMALL)
    second = generate_district(root / "b", SMALL)
    return root, first, second


def test_same_seed_gives_identical_files(twice):
    root, first, second = twice
    for name in BYTE_IDENTICAL:
        assert (root / "a" / name).read_bytes() == (root / "b" / name).read_bytes(), name
    assert first["lidar"] == second["lidar"]


def test_another_seed_gives_another_district(twice, tmp_path):
    root, first, _ = twice
    other = generate_district(tmp_path / "c", DistrictSpec(**{**SMALL.__dict__, "seed": 8}))
    assert other["files"]["district.laz"]["sha256"] != first["files"]["district.laz"]["sha256"]


def test_density_scales_the_point_count(twice):
    _, first, _ = twice
    assert 1.8 < first["lidar"]["points_per_m2"] < 2.6


def test_refuses_an_existing_output_without_overwrite(twice):
    root, _, _ = twice
    with pytest.raises(OutputExistsError, match="--overwrite"):
        generate_district(root / "a", SMALL)


def test_failure_leaves_no_partial_output_and_keeps_the_old(tmp_path, monkeypatch):
    out = tmp_path / "district"
    out.mkdir()
    (out / "keep.txt").write_text("old district")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(generate_module.vectors, "write_truth", broken)
    with pytest.raises(RuntimeError):
        generate_district(out, SMALL, overwrite=True)
    assert (out / "keep.txt").read_text() == "old district"
    assert [p.name for p in tmp_path.iterdir()] == ["district"]  # no staging folder left


@pytest.mark.parametrize("spec, message", [
    (DistrictSpec(size=10.0), "--size"),
    (DistrictSpec(density=0.0), "--density"),
    (DistrictSpec(point_format=3), "--point-format"),
])
def test_bad_parameters_name_the_option(spec, message, tmp_path):
    with pytest.raises(InputError, match=message):
        generate_district(tmp_path / "out", spec)
    assert not (tmp_path / "out").exists()


def lutece(*args):
    return subprocess.run([sys.executable, "-m", "gis", *args], capture_output=True, text=True)


def test_cli_existing_output_is_one_line_exit_1(twice):
    root, _, _ = twice
    result = lutece("sample", "generate", str(root / "a"), "--size", "200")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("Error: ")
    assert "--overwrite" in result.stderr and "Traceback" not in result.stderr


def test_cli_bad_density_is_one_line_exit_1(tmp_path):
    result = lutece("-q", "sample", "generate", str(tmp_path / "d"), "--density", "-1")
    assert result.returncode == 1 and "Error: --density -1" in result.stderr
    assert not (tmp_path / "d").exists()


def test_cli_generates_and_prints_the_summary(tmp_path):
    result = lutece("-q", "sample", "generate", str(tmp_path / "d"), "--size", "200", "--density", "1",
                    "--variant-size", "50")
    assert result.returncode == 0, result.stderr
    assert "district.laz" in result.stdout and "ground" in result.stdout
    info = lutece("sample", "info", str(tmp_path / "d"))
    assert info.returncode == 0 and "hotel-de-ville.ifc" in info.stdout
