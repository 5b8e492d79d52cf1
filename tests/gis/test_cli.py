import subprocess
import sys

from click.testing import CliRunner

from gis import doctor
from gis.cli import cli


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "lutece, version" in result.output


def test_doctor_is_all_green_here():
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    for name in ("GDAL", "PROJ", "laspy/lazrs", "open3d", "py3dtiles", "pygeoapi", "ifcopenshell", "dask"):
        assert name in result.output
    assert "missing" not in result.output


def test_doctor_names_the_fix_when_a_library_cannot_be_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "open3d", None)  # makes `import open3d` raise ImportError
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert "Error: open3d cannot be imported" in result.output
    assert "apt-get install libusb-1.0-0" in result.output


def test_doctor_check_reports_without_raising():
    result = doctor.run_check(doctor.Check("nothing", "no_such_module_lutece", lambda m: "1"))
    assert not result.ok and "no_such_module_lutece" in result.detail


def test_config_validate_accepts_a_good_file(tmp_path):
    path = tmp_path / "lutece.yml"
    path.write_text("crs: EPSG:2154\nstore:\n  path: ${CITY:-city}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 0 and "valid" in result.output


def run_lutece(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gis", *args], capture_output=True, text=True, cwd=cwd)


def test_broken_config_is_one_line_and_exit_1(tmp_path):
    path = tmp_path / "lutece.yml"
    path.write_text("store:\n  retention: -3\n", encoding="utf-8")
    result = run_lutece("config", "validate", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "store.retention" in result.stderr and "Traceback" not in result.stderr


def test_no_config_file_is_a_clear_error(tmp_path):
    result = run_lutece("config", "validate", cwd=tmp_path)
    assert result.returncode == 1 and "no lutece.yml" in result.stderr


def test_bad_usage_exits_2():
    result = run_lutece("config", "validate", "--no-such-option")
    assert result.returncode == 2
