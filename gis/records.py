"""The catalog's records: layers, their immutable versions and the change feed's events.

Plain frozen dataclasses, independent of any backend: the backends store and
return them, :mod:`gis.catalog.service` decides what goes in them. They live
below both (imported by :mod:`gis.catalog` and :mod:`gis.backends`, importing
neither), so that the imports run one way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from gis.errors import InputError

KINDS = ("vector", "raster", "pointcloud-3dtiles", "mesh-3dtiles", "cityjson")
ACTIONS = ("publish", "rollback", "withdraw", "reclassify")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def check_layer_id(layer_id: str) -> str:
    """Return ``layer_id`` when it is a slug (lowercase letters, digits, inner hyphens, <= 63 chars).

    Raises
    ------
    InputError
        Otherwise, with an example of a valid id.
    """
    if not isinstance(layer_id, str) or not _SLUG.match(layer_id):
        raise InputError(f"layer id {layer_id!r} is not a slug; use lowercase letters, digits and hyphens "
                         f"(e.g. buildings, hotel-de-ville-interior)")
    return layer_id


def utc_now() -> str:
    """The current UTC time as ISO 8601 with microseconds (sortable as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Layer:
    """A named, catalogued dataset and its current version.

    ``title``/``description`` are French; ``title_en``/``description_en`` the
    optional English. ``current_version`` is ``None`` once withdrawn.
    ``revision`` counts the changes of the layer's row; backends use it for
    optimistic concurrency (a change based on an older revision is refused).
    """

    id: str
    title: str
    kind: str
    crs: str | None
    licence: str
    access: str
    description: str = ""
    title_en: str | None = None
    description_en: str | None = None
    keywords: tuple[str, ...] = ()
    theme: str | None = None
    producer: str | None = None
    extent: tuple[float, float, float, float] | None = None
    update_frequency: str | None = None
    current_version: int | None = None
    last_version: int = 0
    revision: int = 0
    created: str = ""
    updated: str = ""

    def evolve(self, **changes: Any) -> "Layer":
        """A copy with ``changes`` applied."""
        return replace(self, **changes)

    @property
    def withdrawn(self) -> bool:
        return self.current_version is None


@dataclass(frozen=True)
class Version:
    """One immutable publication of a layer.

    ``storage`` says where the data is, for the backend that wrote it:
    ``table:<name>`` for a vector table, ``files:<sha256>/<relative path>`` for
    a raster or a 3D Tiles folder in the content-addressed file store.
    """

    layer_id: str
    number: int
    checksum: str
    storage: str
    publisher: str
    published: str
    kind: str
    crs: str | None = None
    extent: tuple[float, float, float, float] | None = None
    features: int | None = None
    note: str = ""
    lineage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChangeEvent:
    """One entry of the change feed; ``seq`` strictly increases over the whole catalog."""

    seq: int
    layer_id: str
    action: str
    version: int | None
    previous_version: int | None
    access_before: str | None
    access_after: str | None
    time: str
    licence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "layer": self.layer_id, "action": self.action, "version": self.version,
                "previous_version": self.previous_version, "access_before": self.access_before,
                "access_after": self.access_after, "licence": self.licence, "time": self.time}
