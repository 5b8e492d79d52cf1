"""``current/``: one stable path per file layer (raster, CityJSON, 3D Tiles), a symbolic link to its current version.

``<store>/current/dtm.tif`` links to ``../files/<sha256>/dtm_0.5m.tif``;
``<store>/current/streets-3d`` to the version's 3D Tiles folder. A link is
replaced by renaming a new link over it (``rename(2)`` is atomic), so a
reader opening the path gets the old file or the new one, both whole and
immutable. Next to a raster's link, ``dtm.qml`` and ``dtm.sld`` hold its
style: QGIS loads the ``.qml`` beside a raster as its default style.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from gis.qgis.presentation import Style

CURRENT = "current"


def stable_path(store_root: Path, layer_id: str, kind: str, target_name: str) -> Path:
    """The stable path of a file layer: ``current/<id><suffix>`` for a raster, ``current/<id>.city.json`` for
    CityJSON, ``current/<id>`` for 3D Tiles."""
    if kind == "raster":
        return Path(store_root) / CURRENT / f"{layer_id}{Path(target_name).suffix or '.tif'}"
    if kind == "cityjson":
        return Path(store_root) / CURRENT / f"{layer_id}.city.json"
    return Path(store_root) / CURRENT / layer_id


def switch_link(link: Path, target: Path | None, style: Style | None = None) -> None:
    """Point ``link`` at ``target`` (a file or folder) in one rename, or remove it (``target`` None: withdrawn)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if target is None:
        for path in (link, link.with_suffix(".qml"), link.with_suffix(".sld")):
            if path.is_symlink() or path.is_file():
                path.unlink(missing_ok=True)
        return
    if style is not None and link.suffix:
        _replace_text(link.with_suffix(".qml"), style.qml)
        if style.sld is not None:
            _replace_text(link.with_suffix(".sld"), style.sld)
        else:
            link.with_suffix(".sld").unlink(missing_ok=True)
    fresh = link.parent / f".{link.name}.{uuid.uuid4().hex}"
    os.symlink(os.path.relpath(target, link.parent), fresh)
    os.replace(fresh, link)


def _replace_text(path: Path, text: str) -> None:
    fresh = path.parent / f".{path.name}.{uuid.uuid4().hex}"
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)
