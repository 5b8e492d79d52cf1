"""The room programme of the synthetic town hall: its levels and what each wing holds.

Plain data, read by :mod:`pipelines.synthetic.townhall`, which turns it into
rooms, walls, doors, windows and stairs. Changing a room's name, use or size
here changes the IFC, the indoor GeoJSON and the ground truth together.
"""

from __future__ import annotations

from dataclasses import dataclass

SLAB = 0.3  # floor slab thickness, metres
STAIR_X = (40.0, 44.0)  # partition axes of the stair core in the south wing
WET_X = (44.0, 48.0)  # and of the wet core beside it


@dataclass(frozen=True)
class Level:
    index: int  # basement -1, ground floor 0
    code: str
    name: str
    elevation: float  # local z of the finished floor
    height: float  # floor to floor

    @property
    def clear_height(self) -> float:
        return self.height - SLAB


def _core() -> list:
    return [(STAIR_X[1], "Escalier A", "circulation"), (WET_X[1], "Sanitaires", "sanitary")]


LEVELS = (
    Level(-1, "SS", "Sous-sol", -3.5, 3.5),
    Level(0, "RDC", "Rez-de-chaussée", 0.0, 5.0),
    Level(1, "R1", "1er étage", 5.0, 5.0),
    Level(2, "R2", "2e étage", 10.0, 4.0),
    Level(3, "R3", "3e étage", 14.0, 3.5),
)
# Per level: bands S and N are split along x, W and E along y; each item is
# (end of the cell on the wall axis, name[, use]), use "office" when omitted,
# the last one (end None) running to the band's end.
PROGRAMME: dict[str, dict[str, list]] = {
    "SS": {
        "S": [(16, "Local technique", "technical"), (24, "Local électrique", "technical"),
              (40, "Parking vélos", "storage"), *_core(), (None, "Archives historiques", "archive")],
        "N": [(16, "Réserve mobilier", "storage"), (48, "Archives", "archive"), (None, "Chaufferie", "technical")],
        "W": [(20, "Local informatique", "technical"), (None, "Réserve", "storage")],
        "E": [(20, "Local poubelles", "storage"), (None, "Vestiaires du personnel", "sanitary")],
    },
    "RDC": {
        "S": [(16, "Salle des mariages", "meeting"), (24, "Accueil état civil", "office"),
              (40, "Hall d'accueil", "reception"), *_core(), (None, "Espace citoyens", "reception")],
        "N": [(16, "Office traiteur", "technical"), (48, "Salle des fêtes", "reception"), (None, "Vestiaire", "storage")],
        "W": [(20, "Police municipale", "office"), (28, "Local courrier", "storage"), (None, "Sanitaires Ouest", "sanitary")],
        "E": [(20, "Bureau 0.01"), (28, "Bureau 0.02"), (None, "Local ménage", "storage")],
    },
    "R1": {
        "S": [(16, "Salon d'honneur", "reception"), (24, "Bureau du Maire", "office"),
              (40, "Salle du Conseil", "meeting"), *_core(), (None, "Salle des commissions", "meeting")],
        "N": [(16, "Cabinet du Maire", "office"), (24, "Secrétariat général", "office"), (32, "Bureau 1.01"),
              (40, "Bureau 1.02"), (48, "Bureau 1.03"), (None, "Salle de réunion 1.A", "meeting")],
        "W": [(20, "Bureau 1.04"), (28, "Bureau 1.05"), (None, "Reprographie", "technical")],
        "E": [(20, "Bureau 1.06"), (28, "Bureau 1.07"), (None, "Sanitaires Est", "sanitary")],
    },
    "R2": {
        "S": [(16, "Bureau 2.01"), (24, "Bureau 2.02"), (32, "Bureau 2.03"),
              (40, "Salle de réunion 2.A", "meeting"), *_core(), (None, "Bureau 2.04")],
        "N": [(16, "Bureau 2.05"), (24, "Bureau 2.06"), (32, "Bureau 2.07"),
              (40, "Bureau 2.08"), (48, "Bureau 2.09"), (None, "Salle de réunion 2.B", "meeting")],
        "W": [(20, "Bureau 2.10"), (28, "Bureau 2.11"), (None, "Local reprographie", "technical")],
        "E": [(20, "Bureau 2.12"), (28, "Bureau 2.13"), (None, "Sanitaires Est", "sanitary")],
    },
    "R3": {
        "S": [(16, "Archives courantes", "archive"), (24, "Bureau 3.01"), (32, "Bureau 3.02"),
              (40, "Bureau 3.03"), *_core(), (None, "Salle de réunion 3.A", "meeting")],
        "N": [(16, "Bureau 3.04"), (32, "Bureau 3.05"), (48, "Bureau 3.06"),
              (None, "Local serveurs", "technical")],
        "W": [(20, "Bureau 3.07"), (28, "Bureau 3.08"), (None, "Réserve fournitures", "storage")],
        "E": [(20, "Bureau 3.09"), (28, "Bureau 3.10"), (None, "Sanitaires Est", "sanitary")],
    },
}
# Doors beyond the one from every room to its corridor: room to room, and
# exterior doors as (room, wall id, position along the wall's axis, width, height).
ROOM_DOORS = {
    "RDC": [("Salle des fêtes", "Office traiteur"), ("Salle des fêtes", "Vestiaire"),
            ("Hall d'accueil", "Accueil état civil")],
    "R1": [("Bureau du Maire", "Salle du Conseil"), ("Bureau du Maire", "Salon d'honneur")],
}
EXTERIOR_DOORS = {
    "RDC": [("Hall d'accueil", "ext-S", 32.0, 1.8, 3.0), ("Couloir Sud", "court-S", 32.0, 1.8, 2.5),
            ("Office traiteur", "ext-N", 8.0, 1.2, 2.5)],
}
# Windows per level: (sill, height); façade windows 1.4 m wide, courtyard 1.2 m.
WINDOWS = {"RDC": (1.0, 3.0), "R1": (0.9, 3.2), "R2": (0.9, 2.4), "R3": (0.9, 2.0)}
WINDOW_WIDTH = {"exterior": 1.4, "courtyard": 1.2}
