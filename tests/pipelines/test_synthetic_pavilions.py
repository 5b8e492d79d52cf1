"""The benchmark's larger building: the town hall's pavilions in a row, as one IFC building."""

from __future__ import annotations

import itertools

import ifcopenshell
import ifcopenshell.util.element as ifc_element
import pytest
import shapely
from click.testing import CliRunner

from gis.cli import cli
from pipelines.synthetic.ifc import write_ifc
from pipelines.synthetic.pavilions import build_complex
from pipelines.synthetic.townhall import TownHallSite, build_model, room_truth

SITE = TownHallSite(origin=(651180.0, 6861150.0), rotation_deg=0.0, ground_z=36.0)


def test_every_pavilion_is_the_town_hall_moved_apart():
    one, three = build_model(), build_complex(3)
    assert three.levels == one.levels and len(three.rooms) == 3 * len(one.rooms)
    assert len({room.code for room in three.rooms}) == len(three.rooms)
    for k in range(3):
        rooms = three.rooms[k * len(one.rooms):(k + 1) * len(one.rooms)]
        assert [room.area for room in rooms] == pytest.approx([room.area for room in one.rooms])
        assert all(room.name.endswith(f"(P{k + 1:02d})") for room in rooms)
    for a, b in itertools.combinations(range(3), 2):  # pavilions stand apart: no room of one overlaps another's
        left = shapely.union_all([r.polygon for r in three.rooms if r.code.startswith(f"P{a + 1:02d}-")])
        right = shapely.union_all([r.polygon for r in three.rooms if r.code.startswith(f"P{b + 1:02d}-")])
        assert not left.intersects(right)


def test_the_complex_ifc_holds_every_pavilion_s_spaces_with_their_true_areas(tmp_path):
    model = build_complex(2)
    write_ifc(SITE, tmp_path / "complex.ifc", model)
    f = ifcopenshell.open(str(tmp_path / "complex.ifc"))
    assert len(f.by_type("IfcBuildingStorey")) == 5 and len(f.by_type("IfcBuilding")) == 1
    spaces = f.by_type("IfcSpace")
    assert len({s.GlobalId for s in f.by_type("IfcRoot")}) == len(f.by_type("IfcRoot"))
    areas = {s.LongName: ifc_element.get_pset(s, "Qto_SpaceBaseQuantities")["NetFloorArea"] for s in spaces}
    truth = {room["code"]: room["area_m2"] for room in room_truth(SITE, model)}
    assert areas == truth and len(truth) == 2 * len(build_model().rooms)


def test_the_cli_refuses_to_overwrite_and_to_write_nowhere(tmp_path):
    (tmp_path / "taken.ifc").write_text("x")
    result = CliRunner().invoke(cli, ["sample", "ifc", str(tmp_path / "taken.ifc")])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert (tmp_path / "taken.ifc").read_text() == "x"
    result = CliRunner().invoke(cli, ["sample", "ifc", str(tmp_path / "missing" / "big.ifc")])
    assert result.exit_code == 1 and "does not exist" in result.output
