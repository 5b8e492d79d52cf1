"""CQL2 filters (pygeoapi's pygeofilter AST) to a parameterised SQL ``WHERE`` clause.

pygeoapi parses ``filter=`` (CQL2 text) and POSTed CQL2 JSON with
pygeofilter and hands the provider the AST; this module compiles it for
SQLite (the GeoPackage) or PostGIS. Values never enter the SQL text: they
are bound parameters; attribute names are checked against the layer's
fields and quoted. Anything else (functions, temporal or array operators)
is refused with :class:`~pygeoapi.provider.base.ProviderInvalidQueryError`,
a 400 with an OGC exception body.

On SQLite the spatial predicates call ``lutece_spatial(op, geometry, wkb)``,
a Python function registered on the connection that decodes the GeoPackage
blob and asks shapely (GEOS); on PostGIS they are PostGIS' own functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pygeoapi.provider.base import ProviderInvalidQueryError

_COMPARISONS = {"Equal": "=", "NotEqual": "<>", "LessThan": "<", "LessEqual": "<=", "GreaterThan": ">",
                "GreaterEqual": ">="}
SPATIAL = {"GeometryIntersects": "intersects", "GeometryDisjoint": "disjoint", "GeometryContains": "contains",
           "GeometryWithin": "within", "GeometryTouches": "touches", "GeometryCrosses": "crosses",
           "GeometryOverlaps": "overlaps", "GeometryEquals": "equals"}
_POSTGIS = {"intersects": "ST_Intersects", "disjoint": "ST_Disjoint", "contains": "ST_Contains",
            "within": "ST_Within", "touches": "ST_Touches", "crosses": "ST_Crosses", "overlaps": "ST_Overlaps",
            "equals": "ST_Equals"}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Dialect:
    """How one database spells parameters and spatial tests."""

    postgis: bool
    geometry: str  # the geometry column
    srid: int = 0
    fields: dict[str, dict] = field(default_factory=dict)

    @property
    def mark(self) -> str:
        return "%s" if self.postgis else "?"

    def spatial(self, op: str, wkb: bytes, params: list) -> str:
        params.append(wkb)
        if self.postgis:
            return f"{_POSTGIS[op]}({quote(self.geometry)}, ST_GeomFromWKB(%s, {int(self.srid)}))"
        params.insert(len(params) - 1, op)
        return f"lutece_spatial(?, {quote(self.geometry)}, ?)"


def compile_filter(node, dialect: Dialect) -> tuple[str, list[Any]]:
    """The SQL condition of a pygeofilter AST and its parameters."""
    params: list[Any] = []
    return _Compiler(dialect, params).visit(node), params


class _Compiler:
    def __init__(self, dialect: Dialect, params: list) -> None:
        self.dialect = dialect
        self.params = params

    def visit(self, node) -> str:
        name = type(node).__name__
        method = getattr(self, f"_{name}", None)
        if name in _COMPARISONS:
            return self._comparison(node, _COMPARISONS[name])
        if name in SPATIAL:
            return self._spatial(node, SPATIAL[name])
        if method is None:
            raise ProviderInvalidQueryError(user_msg=f"filter: {name} is not supported by this server")
        return method(node)

    # -- logic ------------------------------------------------------------------------------------
    def _And(self, node) -> str:
        return f"({self.visit(node.lhs)} AND {self.visit(node.rhs)})"

    def _Or(self, node) -> str:
        return f"({self.visit(node.lhs)} OR {self.visit(node.rhs)})"

    def _Not(self, node) -> str:
        return f"(NOT {self.visit(node.sub_node)})"

    def _Include(self, node) -> str:
        return "(1=0)" if node.not_ else "(1=1)"

    # -- scalars ----------------------------------------------------------------------------------
    def _comparison(self, node, op: str) -> str:
        return f"({self.operand(node.lhs)} {op} {self.operand(node.rhs)})"

    def _Between(self, node) -> str:
        text = f"{self.operand(node.lhs)} BETWEEN {self.operand(node.low)} AND {self.operand(node.high)}"
        return f"(NOT ({text}))" if node.not_ else f"({text})"

    def _Like(self, node) -> str:
        if not isinstance(node.pattern, str):
            raise ProviderInvalidQueryError(user_msg="filter: LIKE needs a text pattern")
        tokens = _like_tokens(node.pattern, node.wildcard, node.singlechar, node.escapechar)
        lhs = self.operand(node.lhs)
        if self.dialect.postgis:
            self.params.append(_as_like(tokens))
            text = f"CAST({lhs} AS text) {'ILIKE' if node.nocase else 'LIKE'} %s ESCAPE '\\'"
        elif node.nocase:
            self.params.append(_as_like(tokens))
            text = f"{lhs} LIKE ? ESCAPE '\\'"  # SQLite's LIKE ignores ASCII case
        else:
            self.params.append(_as_glob(tokens))
            text = f"{lhs} GLOB ?"  # SQLite's case-sensitive match
        return f"(NOT ({text}))" if node.not_ else f"({text})"

    def _In(self, node) -> str:
        if not node.sub_nodes:
            return "(1=0)" if not node.not_ else "(1=1)"
        values = ", ".join(self.operand(value) for value in node.sub_nodes)
        return f"({self.operand(node.lhs)} {'NOT IN' if node.not_ else 'IN'} ({values}))"

    def _IsNull(self, node) -> str:
        return f"({self.operand(node.lhs)} IS {'NOT ' if node.not_ else ''}NULL)"

    # -- spatial ----------------------------------------------------------------------------------
    def _spatial(self, node, op: str) -> str:
        lhs, rhs = node.lhs, node.rhs
        if _is_attribute(rhs) and not _is_attribute(lhs):
            lhs, rhs = rhs, lhs
            op = {"within": "contains", "contains": "within"}.get(op, op)
        self.geometry_attribute(lhs)
        return f"({self.dialect.spatial(op, _wkb(rhs), self.params)})"

    def _BBox(self, node) -> str:
        import shapely

        self.geometry_attribute(node.lhs)
        box = shapely.box(node.minx, node.miny, node.maxx, node.maxy)
        return f"({self.dialect.spatial('intersects', shapely.to_wkb(box), self.params)})"

    def geometry_attribute(self, node) -> None:
        if not _is_attribute(node):
            raise ProviderInvalidQueryError(user_msg="filter: a spatial test needs the geometry property on one side")
        if node.name not in (self.dialect.geometry, "geometry", "geom"):
            raise ProviderInvalidQueryError(user_msg=f"filter: {node.name!r} is not the geometry property")

    # -- operands ---------------------------------------------------------------------------------
    def operand(self, value) -> str:
        if _is_attribute(value):
            if value.name not in self.dialect.fields:
                raise ProviderInvalidQueryError(user_msg=f"filter: unknown property {value.name!r}; "
                                                         f"see the collection's queryables")
            return quote(value.name)
        if isinstance(value, bool):
            self.params.append(value if self.dialect.postgis else int(value))
        elif isinstance(value, (int, float, str)):
            self.params.append(value)
        elif isinstance(value, (datetime, date)):
            self.params.append(value.isoformat())
        else:
            raise ProviderInvalidQueryError(user_msg=f"filter: {type(value).__name__} values are not supported here")
        return self.dialect.mark


def _is_attribute(node) -> bool:
    return type(node).__name__ == "Attribute"


def _wkb(value) -> bytes:
    import shapely
    from shapely.geometry import shape

    geojson = getattr(value, "geometry", None)
    if type(value).__name__ == "Envelope":
        return shapely.to_wkb(shapely.box(value.x1, value.y1, value.x2, value.y2))
    if not isinstance(geojson, dict):
        raise ProviderInvalidQueryError(user_msg="filter: a spatial test needs a geometry literal")
    try:
        return shapely.to_wkb(shape(geojson))
    except Exception:
        raise ProviderInvalidQueryError(user_msg="filter: the geometry literal is not valid") from None


def _like_tokens(pattern: str, wildcard: str, single: str, escape: str | None) -> list[str | None]:
    """A LIKE pattern as characters, ``None`` standing for "any run" and ``""`` for "one character"."""
    tokens: list[str | None] = []
    chars = iter(pattern)
    for char in chars:
        if escape and char == escape:
            tokens.append(next(chars, escape))
        elif char == wildcard:
            tokens.append(None)
        elif char == single:
            tokens.append("")
        else:
            tokens.append(char)
    return tokens


def _as_like(tokens: list[str | None]) -> str:
    return "".join("%" if t is None else "_" if t == "" else ("\\" + t if t in "%_\\" else t) for t in tokens)


def _as_glob(tokens: list[str | None]) -> str:
    return "".join("*" if t is None else "?" if t == "" else (f"[{t}]" if t in "*?[" else t) for t in tokens)
