"""A small valid CityJSON 2.0 document for the tests: ``count`` box buildings (LoD1.2 solids with semantics).

Its truth is its construction: the tests know each building's corners and
height, and the document validates against the official CityJSON 2.0 schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCALE = 0.001
# The six faces of a box over vertices 0-3 (ground, counter-clockwise from above) and 4-7 (roof).
_FACES = [[[0, 3, 2, 1]], [[4, 5, 6, 7]], [[0, 1, 5, 4]], [[1, 2, 6, 5]], [[2, 3, 7, 6]], [[3, 0, 4, 7]]]


def box_buildings(count: int = 2, seed: int = 0, epsg: int | None = 2154, origin=(651000.0, 6861000.0),
                  version: str = "2.0") -> dict[str, Any]:
    """A CityJSON document of ``count`` boxes 10 m wide, 5 m apart, ``6 + seed`` m high (``seed`` changes its bytes)."""
    height = 6.0 + seed
    vertices, objects = [], {}
    for index in range(count):
        x0, base = index * 15.0, len(vertices)
        corners = [(x0, 0.0), (x0 + 10.0, 0.0), (x0 + 10.0, 10.0), (x0, 10.0)]
        vertices += [[round(x / SCALE), round(y / SCALE), round(z / SCALE)]
                     for z in (0.0, height) for x, y in corners]
        shell = [[[vertex + base for vertex in ring] for ring in face] for face in _FACES]
        objects[f"batiment-{index + 1}"] = {
            "type": "Building", "attributes": {"height": height, "roof_type": "flat"},
            "geometry": [{"type": "Solid", "lod": "1.2", "boundaries": [shell],
                          "semantics": {"surfaces": [{"type": "GroundSurface"}, {"type": "RoofSurface"},
                                                     {"type": "WallSurface"}],
                                        "values": [[0, 1, 2, 2, 2, 2]]}}]}
    metadata = {"referenceSystem": f"https://www.opengis.net/def/crs/EPSG/0/{epsg}"} if epsg else {}
    return {"type": "CityJSON", "version": version,
            "transform": {"scale": [SCALE] * 3, "translate": [origin[0], origin[1], 35.0]},
            "metadata": metadata, "CityObjects": objects, "vertices": vertices}


def write_cityjson(path: Path, document: dict[str, Any] | None = None, **options: Any) -> Path:
    """Write ``document`` (default: :func:`box_buildings` with ``options``) to ``path``; return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document if document is not None else box_buildings(**options)), encoding="utf-8")
    return path
