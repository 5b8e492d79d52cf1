"""ASPRS class codes live in gis/asprs.py only: no module of pipelines/, tiles/ or their tests defines its own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from gis import asprs

ROOT = Path(__file__).resolve().parents[2]
CLASS_NAME = re.compile(r"(^|_)(CLASS|CLASSES|GROUND|BUILDING|NOISE|NOISES|WATER|UNCLASSIFIED|VEGETATION)$")


def _integers(node: ast.AST) -> bool:
    """A literal int, or a tuple, list or set of them."""
    if isinstance(node, ast.Constant):
        return type(node.value) is int
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and bool(node.elts) and all(map(_integers, node.elts))


def test_no_module_defines_class_codes_of_its_own():
    offenders = []
    for package in ("pipelines", "tiles", "tests/pipelines"):
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Assign):
                    continue
                names = [target for target in node.targets if isinstance(target, (ast.Name, ast.Tuple))]
                flat = [n.id for t in names for n in ([t] if isinstance(t, ast.Name) else t.elts) if isinstance(n, ast.Name)]
                if any(CLASS_NAME.search(name) for name in flat) and _integers(node.value):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {', '.join(flat)}")
    assert offenders == []


def test_the_vocabulary_names_every_code_it_defines():
    codes = {value for name, value in vars(asprs).items() if name.isupper() and isinstance(value, int)}
    assert codes == set(asprs.NAMES) and asprs.name(6) == "building" and asprs.name(200) == "other"
