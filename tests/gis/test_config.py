
import pytest

from gis.config import DEFAULTS, load_config, parse_config, substitute_variables
from gis.errors import ConfigError, LuteceError


def test_defaults_when_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LUTECE_CONFIG", raising=False)
    config = load_config()
    assert config.crs == "EPSG:2154"
    assert config.store == DEFAULTS["store"]
    assert config.path is None


def test_file_values_merge_over_defaults(tmp_path):
    path = tmp_path / "lutece.yml"
    path.write_text("store:\n  path: /srv/city\ntiling:\n  tile_size: 500\n", encoding="utf-8")
    config = load_config(path)
    assert config.store["path"] == "/srv/city"
    assert config.store["backend"] == "geopackage"  # default kept beside the file's value
    assert config.tile_size == 500.0
    assert config.halo == DEFAULTS["tiling"]["halo"]


def test_variable_substitution_with_and_without_default():
    environ = {"CITY": "/data/paris"}
    text = "store:\n  path: ${CITY}\n  retention: ${KEEP:-7}\n"
    data = parse_config(text, environ=environ)
    assert data["store"] == {"path": "/data/paris", "retention": 7}


def test_missing_variable_names_it_and_the_line():
    with pytest.raises(ConfigError, match=r"line 2: environment variable PGDSN is not set"):
        substitute_variables("store:\n  dsn: ${PGDSN}\n", environ={}, origin="lutece.yml")


def test_commented_variables_are_ignored():
    assert substitute_variables("# dsn: ${UNSET}\n", environ={}) == "# dsn: ${UNSET}\n"


@pytest.mark.parametrize("text, message", [
    ("store:\n  retention: 0\n", "store.retention: 0 is less than the minimum of 1"),
    ("crs: 2154\n", "crs: 2154 is not of type 'string'"),
    ("store:\n  backend: postgis\n", "'dsn' is a required property"),
    ("colour: blue\n", "Additional properties are not allowed"),
    ("crs: [\n", "line 2"),
])
def test_invalid_configs_raise_one_clear_error(text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse_config(text, origin="lutece.yml")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.yml")


def test_errors_share_one_root_and_builtins():
    error = ConfigError("x")
    assert isinstance(error, LuteceError) and isinstance(error, ValueError)
