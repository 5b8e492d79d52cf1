"""The layout's rules, read from the source: imports run one way, and what the code imports is declared."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = ("gis", "pipelines", "tiles", "server")


def _imports(path: Path) -> set[str]:
    """The absolute module names a file imports (at any depth of its code)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _modules(*parts: str) -> list[Path]:
    found = []
    for part in parts:
        path = ROOT / part
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return found


def test_records_checksums_and_backends_do_not_import_the_catalog():
    """The catalog imports the backends; nothing below it imports it back (no lazy import needed)."""
    below = _modules("gis/records", "gis/checksums", "gis/backends")
    offenders = {str(path.relative_to(ROOT)): sorted(name for name in _imports(path) if name.startswith("gis.catalog"))
                 for path in below}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_catalog_package_imports_plainly():
    """``from gis.catalog import Catalog`` needs no module ``__getattr__``, whichever module comes first."""
    source = (ROOT / "gis" / "catalog" / "__init__.py").read_text(encoding="utf-8")
    assert not any(isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
                   for node in ast.parse(source).body)
    for first in ("gis.backends.geopackage", "gis.backends.postgis", "gis.catalog", "gis.records"):
        code = f"import {first}\nfrom gis.catalog import Catalog, Layer\nprint(Catalog.__module__)"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert result.returncode == 0 and result.stdout.strip() == "gis.catalog.service", result.stderr[-2000:]


def test_benchmarks_import_no_test_module():
    """The throw-away PostgreSQL helper is a development tool (gis.testing), not test code."""
    for path in _modules("benchmarks"):
        text = path.read_text(encoding="utf-8")
        assert "tests" not in re.findall(r"sys\.path\.\w+\(.*?(tests).*?\)", text), path
        assert not {name for name in _imports(path) if name.split(".")[0] in ("postgis_server", "conftest")}, path


def _declared() -> set[str]:
    """Distribution names declared in pyproject.toml (runtime and test), extras included, normalised."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    names = set()
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[([^\]]*)\])?", requirement)
        names.add(match.group(1))
        names |= {extra.strip() for extra in (match.group(2) or "").split(",") if extra.strip()}
    return {_normal(name) for name in names}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_distribution_is_declared():
    """What the packages import is declared in pyproject.toml (pandas was imported in nine modules, undeclared)."""
    imported = set()
    for path in _modules(*[package for package in OURS if (ROOT / package).is_dir()]):
        imported |= {name.split(".")[0] for name in _imports(path)}
    third_party = imported - set(sys.stdlib_module_names) - set(OURS) - {"__future__"}
    distributions = packages_distributions()
    declared = _declared()
    undeclared = {module: distributions.get(module) for module in sorted(third_party)
                  if not any(_normal(name) in declared for name in distributions.get(module, []))}
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"
