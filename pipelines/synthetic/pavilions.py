"""A larger building for benchmarks: a row of the sample town hall's pavilions sharing its storeys.

:func:`build_complex` repeats the town hall's model (:func:`.townhall.build_model`) ``pavilions`` times
along its x axis, ``PAVILION_GAP`` apart, as one building whose storeys span every pavilion: ten pavilions
make 5 storeys and 1,020 spaces. Every id and room name gets the pavilion's code (``P03``), so that
rooms stay distinguishable and the IFC writer's keys stay unique; the IFC (:func:`.ifc.write_ifc`) and
the ground truth (:func:`.townhall.room_truth`) take the complex's model as they take the town hall's.

Generated on demand (``lutece sample ifc``), never committed.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import shapely.affinity

from pipelines.synthetic.townhall import WIDTH, Door, Room, Stair, TownHall, Wall, Window, build_model

PAVILION_GAP = 12.0  # metres of open ground between two pavilions


@cache
def build_complex(pavilions: int) -> TownHall:
    """The town hall's model repeated ``pavilions`` times along x, as one building.

    Parameters
    ----------
    pavilions
        How many pavilions (at least 1; 10 give 1,020 spaces on 5 storeys).

    Returns
    -------
    TownHall
        Levels shared, rooms, walls, doors, windows and stairs of every pavilion, and each pavilion's x offset.
    """
    if pavilions < 1:
        raise ValueError(f"pavilions {pavilions}: give at least 1")
    one = build_model()
    parts = [_shifted(one, k * (WIDTH + PAVILION_GAP), f"P{k + 1:02d}") for k in range(pavilions)]
    return TownHall(one.levels, *(tuple(item for part in parts for item in getattr(part, name))
                                  for name in ("rooms", "walls", "doors", "windows", "stairs")),
                    offsets=tuple(k * (WIDTH + PAVILION_GAP) for k in range(pavilions)))


def _shifted(model: TownHall, dx: float, code: str) -> TownHall:
    """``model`` moved ``dx`` metres along x, its ids and room names marked with ``code``."""

    def moved(point: tuple[float, float]) -> tuple[float, float]:
        return (point[0] + dx, point[1])

    def room(r: Room) -> Room:
        return replace(r, code=f"{code}-{r.code}", name=f"{r.name} ({code})",
                       polygon=shapely.affinity.translate(r.polygon, dx))

    def wall(w: Wall) -> Wall:
        return replace(w, id=f"{code}-{w.id}", start=moved(w.start), end=moved(w.end))

    def door(d: Door) -> Door:
        return replace(d, id=f"{code}-{d.id}", wall_id=f"{code}-{d.wall_id}", center=moved(d.center),
                       connects=tuple(f"{name} ({code})" for name in d.connects))

    def window(w: Window) -> Window:
        return replace(w, id=f"{code}-{w.id}", wall_id=f"{code}-{w.wall_id}", center=moved(w.center))

    def stair(s: Stair) -> Stair:
        flights = tuple(replace(f, x0=f.x0 + dx, x1=f.x1 + dx) for f in s.flights)
        return replace(s, flights=flights, landing=shapely.affinity.translate(s.landing, dx))

    return TownHall(model.levels, tuple(map(room, model.rooms)), tuple(map(wall, model.walls)),
                    tuple(map(door, model.doors)), tuple(map(window, model.windows)), tuple(map(stair, model.stairs)))
