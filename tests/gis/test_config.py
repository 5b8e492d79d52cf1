
import pytest

from gis.config import DEFAULTS, load_config, parse_config
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
    path.write_text("store:\n  path: /srv/city\ntiling:\n  halo: 5\n", encoding="utf-8")
    config = load_config(path)
    assert config.store["path"] == "/srv/city"
    assert config.store["backend"] == "geopackage"  # default kept beside the file's value
    assert config.halo == 5.0
    assert config.crs == DEFAULTS["crs"]


def test_variable_substitution_with_and_without_default():
    environ = {"CITY": "/data/paris"}
    text = "store:\n  path: ${CITY}\n  retention: ${KEEP:-7}\n"
    data = parse_config(text, environ=environ)
    assert data["store"] == {"path": "/data/paris", "retention": 7}


def test_missing_variable_names_it_and_the_line():
    with pytest.raises(ConfigError, match=r"lutece.yml, line 3: environment variable PGDSN is not set"):
        parse_config("store:\n  backend: postgis\n  dsn: ${PGDSN}\n", environ={}, origin="lutece.yml")


def test_commented_variables_are_ignored():
    assert parse_config("# dsn: ${UNSET}\ncrs: EPSG:2154  # ${UNSET_TOO}\n", environ={}) == {"crs": "EPSG:2154"}


def test_a_newline_in_a_value_cannot_inject_keys():
    # Substituted as text, this value used to become a second key `retention: 1`.
    environ = {"CITY": "/srv/city\nretention: 1"}
    data = parse_config("store:\n  path: ${CITY}\n", environ=environ)
    assert data["store"] == {"path": "/srv/city\nretention: 1"}


def test_a_value_with_a_hash_is_not_cut():
    # Substituted as text, ` #...` started a comment and the value was cut to "/srv/city".
    data = parse_config("store:\n  path: ${CITY}\n", environ={"CITY": "/srv/city #2"})
    assert data["store"]["path"] == "/srv/city #2"


@pytest.mark.parametrize("value", ["key: value", 'say "hi"', "it's", "[1, 2]", "{a: 1}", "- item", "&anchor *x"])
def test_values_with_yaml_syntax_stay_one_string(value):
    data = parse_config("store:\n  path: ${CITY}\n  dsn: '${CITY}'\n", environ={"CITY": value})
    assert data["store"]["path"] == value and data["store"]["dsn"] == value


def test_defaults_typed_as_yaml_types_plain_values_quoted_ones_stay_strings():
    # The comment after the default used to be substituted too, and its unset ${KEEP} failed.
    text = ("store:\n  path: ${CITY:-city one}\n  retention: ${KEEP:-3}  # set ${KEEP} to keep more\n"
            "crs: 'EPSG:${CODE:-2154}'\n")
    data = parse_config(text, environ={})
    assert data["store"] == {"path": "city one", "retention": 3}
    assert data["crs"] == "EPSG:2154"
    with pytest.raises(ConfigError, match="crs: 2154 is not of type 'string'"):
        parse_config("crs: ${CODE:-2154}\n", environ={})  # plain: an integer, as the same text typed in
    with pytest.raises(ConfigError, match="crs: '2154' does not match"):
        parse_config("crs: '${CODE:-2154}'\n", environ={})  # quoted: the string '2154'


def test_an_explicit_tag_is_kept_and_flow_lists_say_to_quote():
    assert parse_config("store:\n  path: !!str ${N}\n", environ={"N": "12"})["store"]["path"] == "12"
    with pytest.raises(ConfigError, match=r'line 2: .*quote a variable: "\$\{VAR\}"'):
        parse_config("tiling:\n  halo: [${R}]\n", environ={"R": "1"})


def test_keys_are_never_substituted():
    with pytest.raises(ConfigError, match="Additional properties"):
        parse_config("${KEY}: 1\n", environ={"KEY": "crs"})


def test_a_value_from_the_environment_is_not_substituted_again():
    data = parse_config("store:\n  path: ${CITY}\n", environ={"CITY": "${HOME}", "HOME": "/root"})
    assert data["store"]["path"] == "${HOME}"


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


def test_settings_no_longer_read_are_named():
    with pytest.raises(ConfigError, match=r"tiling.tile_size is no longer read \(the job is split by lidar file\)"):
        parse_config("tiling:\n  tile_size: 500\n")
    with pytest.raises(ConfigError, match=r"rasters.resolutions is no longer read .*resolution option"):
        parse_config("rasters:\n  resolutions: [0.5]\n")
    assert parse_config("crs: auto\ntiling:\n  halo: 0\n")["crs"] == "auto"
