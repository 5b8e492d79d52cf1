"""ASPRS point classes of LAS 1.4 (R15, table 17) as IGN LiDAR HD uses them: the one place for their codes.

A vocabulary only, shared by the pipelines (which classify and read points)
and the 3D Tiles writers (which carry the class of each point); it imports
nothing.
"""

from __future__ import annotations

NEVER_CLASSIFIED = 0
UNCLASSIFIED = 1
GROUND = 2
LOW_VEGETATION = 3
MEDIUM_VEGETATION = 4
HIGH_VEGETATION = 5
BUILDING = 6
NOISE = 7  # "low point (noise)": what noise removal marks
WATER = 9
BRIDGE_DECK = 17
HIGH_NOISE = 18
IGN_PERMANENT_ABOVE_GROUND = 64  # IGN LiDAR HD's own codes
IGN_ARTEFACT = 65
IGN_VIRTUAL = 66

VEGETATION = (LOW_VEGETATION, MEDIUM_VEGETATION, HIGH_VEGETATION)
TERRAIN = (GROUND, WATER)  # IGN's DTMs take water surfaces as terrain
NOISES = (NOISE, HIGH_NOISE)
ABOVE_GROUND = (*VEGETATION, BUILDING)  # what building/vegetation classification decides between

NAMES = {NEVER_CLASSIFIED: "never classified", UNCLASSIFIED: "unclassified", GROUND: "ground",
         LOW_VEGETATION: "low vegetation", MEDIUM_VEGETATION: "medium vegetation", HIGH_VEGETATION: "high vegetation",
         BUILDING: "building", NOISE: "noise", WATER: "water", BRIDGE_DECK: "bridge deck", HIGH_NOISE: "high noise",
         IGN_PERMANENT_ABOVE_GROUND: "permanent above-ground (IGN)", IGN_ARTEFACT: "artefact (IGN)",
         IGN_VIRTUAL: "virtual point (IGN)"}


def name(code: int) -> str:
    """The class's name, ``other`` for a code this vocabulary does not name.

    >>> name(6), name(70)
    ('building', 'other')
    """
    return NAMES.get(int(code), "other")
