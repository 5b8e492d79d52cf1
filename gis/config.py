"""The one configuration file, ``lutece.yml``.

The file is YAML with ``${VAR}`` and ``${VAR:-default}`` substitution from the
environment inside its parsed values (secrets such as database passwords come
from there, never from the file), validated against the JSON Schema shipped in
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
from typing import Any, Mapping

import yaml

from gis.errors import ConfigError

CONFIG_ENV_VAR = "LUTECE_CONFIG"
DEFAULT_FILENAME = "lutece.yml"

DEFAULTS: dict[str, Any] = {
    "store": {"backend": "geopackage", "path": "city", "retention": 5},
    "crs": "EPSG:2154",
    "tiling": {"halo": 20.0},
    "workers": 0,
    "scheduler": None,
}

# Settings that were validated but read by nothing; a file still holding them says so in one line.
REMOVED = (("tiling", "tile_size", "the job is split by lidar file"),
           ("rasters", "resolutions", "each raster writer of a pipeline has its resolution option"))

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
    def halo(self) -> float:
        return float(self.data["tiling"]["halo"])


def substitute_variables(value: str, environ: Mapping[str, str] | None = None, where: str = "config") -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in one string with values from the environment.

    One pass: a value taken from the environment is never searched for
    further ``${...}``.

    Raises
    ------
    ConfigError
        When a variable without a default is not set (``where`` names the place).
    """
    environ = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set; "
                          f"set it or give a default with ${{{name}:-value}}")

    return _VARIABLE.sub(replace, value)


# What a substituted plain value may become: YAML's "=" and "<<" markers, or dates, stay text.
_VALUE_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null")}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, noting which scalars are plain and carry no tag (YAML types those)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.typed_by_yaml: set[int] = set()

    def compose_scalar_node(self, anchor: str | None) -> yaml.ScalarNode:
        event = self.peek_event()
        node = super().compose_scalar_node(anchor)
        if event.tag is None and event.style is None:
            self.typed_by_yaml.add(id(node))
        return node


def load_yaml_with_variables(text: str, origin: str = "config",
                             environ: Mapping[str, str] | None = None) -> Any:
    """Parse YAML, then substitute ``${VAR}`` inside its scalar string values.

    The substitution happens after parsing, in values only (never in keys),
    so an environment value is always one value: a newline cannot add keys,
    `` #`` cannot cut it, ``: `` or quotes cannot change the document's shape.
    A plain (unquoted) scalar is typed after substitution as YAML types it
    (``retention: ${KEEP:-7}`` is the integer 7, ``${EMPTY}`` is null); a
    quoted one stays a string. Comments are not values, so a commented-out
    ``${UNSET}`` never fails.

    Raises
    ------
    yaml.YAMLError
        When the text is not YAML (the caller words the error).
    ConfigError
        When a variable without a default is not set.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _substitute_node(root, loader, environ, origin, set())
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        _hint_at_unquoted_variables(exc, text)
        raise
    finally:
        loader.dispose()


def _hint_at_unquoted_variables(exc: yaml.MarkedYAMLError, text: str) -> None:
    """``{`` opens a mapping inside ``[...]`` or ``{...}``: say how to write a variable there."""
    mark = exc.problem_mark
    line = text.splitlines()[mark.line] if mark is not None and mark.line < len(text.splitlines()) else ""
    if "${" in line and exc.problem:
        exc.problem += ' (inside [...] or {...}, quote a variable: "${VAR}")'


def _substitute_node(node: yaml.Node, loader: _Loader, environ: Mapping[str, str] | None,
                     origin: str, seen: set[int]) -> None:
    if id(node) in seen:  # an anchor's node is shared by its aliases: substitute it once
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for _key, value in node.value:  # keys are never substituted
            _substitute_node(value, loader, environ, origin, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _substitute_node(item, loader, environ, origin, seen)
    elif isinstance(node, yaml.ScalarNode) and "${" in node.value:
        where = f"{origin}, line {node.start_mark.line + 1}"
        node.value = substitute_variables(node.value, environ, where)
        if id(node) in loader.typed_by_yaml:  # plain and untagged: type the new text
            tag = loader.resolve(yaml.ScalarNode, node.value, (True, False))
            node.tag = tag if tag in _VALUE_TAGS else "tag:yaml.org,2002:str"


def config_schema() -> dict[str, Any]:
    """The JSON Schema of ``lutece.yml`` shipped in the package."""
    return json.loads(files("gis").joinpath("schemas/lutece.schema.json").read_text("utf-8"))


def parse_config(text: str, origin: str = "config", environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse, substitute and validate the text of a configuration file."""
    try:
        data = load_yaml_with_variables(text, origin, environ)
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

    if isinstance(data, dict):
        for section, key, reason in REMOVED:
            if isinstance(data.get(section), dict) and key in data[section]:
                raise ConfigError(f"{origin}: {section}.{key} is no longer read ({reason}); remove it")
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


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load, parse, substitute and validate the configuration, merged over the defaults.

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
