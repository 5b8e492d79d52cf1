"""The one configuration file, ``lutece.yml``.

The file is YAML with ``${VAR}`` and ``${VAR:-default}`` substitution from the
environment (secrets such as database passwords come from there, never from
the file), validated against the JSON Schema shipped in
``gis/schemas/lutece.schema.json``. Values the file leaves out take the
defaults below. Nothing here runs at import time.

Example
-------
>>> config = load_config(None)          # lutece.yml in the current folder, or defaults
>>> config.crs
'EPSG:2154'
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from gis.errors import ConfigError

CONFIG_ENV_VAR = "LUTECE_CONFIG"
DEFAULT_FILENAME = "lutece.yml"

DEFAULTS: dict[str, Any] = {
    "store": {"backend": "geopackage", "path": "city", "retention": 5},
    "crs": "EPSG:2154",
    "tiling": {"tile_size": 1000.0, "halo": 20.0},
    "rasters": {"resolutions": [0.5, 1.0]},
    "workers": 0,
    "scheduler": None,
}

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


@dataclass(frozen=True)
class Config:
    """A validated configuration: the file's values over the defaults."""

    data: dict[str, Any]
    path: Path | None = None
    source: str = field(default="defaults")

    @property
    def crs(self) -> str:
        return self.data["crs"]

    @property
    def store(self) -> dict[str, Any]:
        return self.data["store"]

    @property
    def tile_size(self) -> float:
        return float(self.data["tiling"]["tile_size"])

    @property
    def halo(self) -> float:
        return float(self.data["tiling"]["halo"])


def substitute_variables(text: str, environ: dict[str, str] | None = None, origin: str = "config") -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` with values from the environment.

    Full-line comments are left alone, so a commented-out line never fails.

    Raises
    ------
    ConfigError
        When a variable without a default is not set.
    """
    environ = os.environ if environ is None else environ
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith("#"):
            continue

        def replace(match: re.Match[str]) -> str:
            name, default = match.group("name"), match.group("default")
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{origin}, line {number}: environment variable {name} is not set; "
                f"set it or give a default with ${{{name}:-value}}"
            )

        lines[number - 1] = _VARIABLE.sub(replace, line)
    return "".join(lines)


def config_schema() -> dict[str, Any]:
    """The JSON Schema of ``lutece.yml`` shipped in the package."""
    return json.loads(files("gis").joinpath("schemas/lutece.schema.json").read_text("utf-8"))


def parse_config(text: str, origin: str = "config", environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Substitute, parse and validate the text of a configuration file."""
    text = substitute_variables(text, environ, origin)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{origin}{where}: {problem}; fix the YAML syntax") from None
    if data is None:
        data = {}
    validate_config(data, origin)
    return data


def validate_config(data: Any, origin: str = "config") -> None:
    """Check parsed configuration data against the shipped JSON Schema."""
    import jsonschema  # 0.1 s of imports, only where a configuration is read

    validator = jsonschema.Draft202012Validator(config_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return
    where = ".".join(str(part) for part in error.absolute_path) or "top level"
    raise ConfigError(f"{origin}: {where}: {error.message}; see the configuration section of the README")


def find_config_file(path: Path | None = None, cwd: Path | None = None) -> Path | None:
    """The file to read: the given path, else ``$LUTECE_CONFIG``, else ``./lutece.yml`` if present."""
    if path is not None:
        return Path(path)
    if os.environ.get(CONFIG_ENV_VAR):
        return Path(os.environ[CONFIG_ENV_VAR])
    candidate = (cwd or Path.cwd()) / DEFAULT_FILENAME
    return candidate if candidate.is_file() else None


def load_config(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Config:
    """Load, substitute and validate the configuration, merged over the defaults.

    Parameters
    ----------
    path
        The file to read. ``None`` looks for ``$LUTECE_CONFIG`` then
        ``./lutece.yml`` and falls back to the defaults when neither exists.

    Raises
    ------
    ConfigError
        When the file is missing, unreadable, not YAML or not valid.
    """
    found = find_config_file(Path(path) if path is not None else None)
    if found is None:
        return Config(copy.deepcopy(DEFAULTS))
    try:
        text = found.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{found}: no such configuration file; create it or pass an existing one") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{found}: cannot read the configuration ({reason})") from None
    data = parse_config(text, origin=str(found), environ=environ)
    return Config(merge(DEFAULTS, data), path=found, source=str(found))


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` over a copy of ``base`` (mappings merge, the rest replaces)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
