"""Building shells (lidar-to-buildings) on the sample district, against the generator's truth.

Heights compared (the issue's target, 0.5 m for 95 % of buildings, applied to what LoD1.2/1.3 produce):
the ground under the building (truth ``ground_z``), the building's full height to its highest roof
(``roof_max`` - ``ground`` against ``top_z`` - ``ground_z``), and for flat roofs the prism's own height
(``height``, the 70th percentile) against the truth's ``height_m``. Eaves are not reconstructed below LoD2.2;
roof types and the roof planes' RMSE are (the LoD2.2 geometry is not built yet).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import trimesh
from click.testing import CliRunner

from gis.cli import cli
from pipelines.algorithms.roofs import RoofOptions, reconstruct
from pipelines.algorithms.shells import Prism, building_mesh

ROOT = Path(__file__).resolve().parents[2]
CITYJSON_SCHEMA = ROOT.parent / "shared" / "data" / "cityjson-2.0" / "cityjson.min.schema.json"
TOLERANCE, SHARE = 0.5, 0.95  # issue 14: heights within 0.5 m of the truth for 95 % of buildings


def run_buildings(district: Path, output: Path, footprints: Path, layer: str = "buildings_cadastre", *extra: str):
    return CliRunner().invoke(cli, ["-q", "pipeline", "run", "lidar-to-buildings", "--input",
                                    str(district / "district.laz"), "--output", str(output),
                                    f"--stage.buildings.footprints={footprints}",
                                    f"--stage.buildings.footprints_layer={layer}", *extra])


@pytest.fixture(scope="module")
def products(district, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("buildings")
    result = run_buildings(district, output, district / "district.gpkg")
    assert result.exit_code == 0, result.output
    return output


@pytest.fixture(scope="module")
def layer(products) -> gpd.GeoDataFrame:
    return gpd.read_file(products / "buildings.gpkg", layer="buildings")


@pytest.fixture(scope="module")
def matched(district, layer) -> pd.DataFrame:
    """Each reconstructed building beside the true building its footprint overlaps most."""
    truth = gpd.read_file(district / "truth.gpkg", layer="footprints")
    rows = []
    for _, building in layer.iterrows():
        overlap = truth.geometry.intersection(building.geometry).area
        rows.append(truth.iloc[int(np.argmax(overlap))])
    return pd.concat([layer.reset_index(drop=True), pd.DataFrame(rows).reset_index(drop=True).add_prefix("truth_")],
                     axis=1)


def test_the_cadastres_shifted_footprints_are_reported(matched, district, products):
    """The sample's cadastre: the generator shifted some footprints by 1-2 m and left some buildings out.
    Each shifted by 1.5 m or more is reported shifted, no exact one is; a footprint is reported missing a
    part only next to a building the cadastre misses (its points are in no footprint)."""
    truth = gpd.read_file(district / "truth.gpkg", layer="footprints")
    missing = truth[truth["cadastre"] == "missing"].geometry
    shifted = matched["truth_cadastre"] == "shifted"
    assert matched.loc[shifted & (matched["truth_cadastre_offset_m"] >= 1.5), "footprint_shifted"].all()
    assert not matched.loc[~shifted, "footprint_shifted"].any()
    partial = matched[matched["footprint_partial"]]
    assert all(missing.distance(g).min() < 1.0 for g in partial.geometry), partial["id"].tolist()
    assert (matched.loc[~shifted, "footprint_coverage"] >= 0.95).all()
    page = (products / "report.html").read_text(encoding="utf-8")
    assert "Footprints that disagree with the lidar" in page
    for identifier in matched.loc[matched["footprint_shifted"] | matched["footprint_partial"], "id"]:
        assert identifier in page


def validate_gltf(files: list[Path]) -> list[dict]:
    """The Khronos validator as the tiles tests run it (tests/tiles/tiles_support.py, loaded by path)."""
    import importlib.util
    import sys

    support = sys.modules.get("tiles_support")
    if support is None:
        spec = importlib.util.spec_from_file_location("tiles_support", ROOT / "tests" / "tiles" / "tiles_support.py")
        support = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(support)
        sys.modules["tiles_support"] = support
    return support.validate_gltf(files)


def test_every_footprint_is_kept_with_its_lod_and_why_not_higher(district, layer):
    cadastre = gpd.read_file(district / "district.gpkg", layer="buildings_cadastre")
    assert sorted(layer["id"]) == sorted(cadastre["cadastre_id"])
    assert (layer["lod"] == "2.2").mean() >= 0.95  # the sample's roofs are flat, gable or mansard
    assert set(layer["lod"]) <= {"1.3", "2.2"}
    fallen = layer[layer["lod"] == "1.3"]
    assert fallen["lod_reason"].str.startswith("LoD2.2 failed: ").all()
    assert (fallen["rmse"] > 0.5).all()  # the only reason the sample gives
    assert (layer["point_count"] > 100).all() and (layer["point_density"] > 5).all()
    # a LoD2.2 roof lies under the highest roof points and over the walls' feet
    assert (layer["volume"] < layer["footprint_area"] * (layer["roof_max"] - layer["ground"]) * 1.001).all()
    assert (layer["volume"] > layer["footprint_area"] * (layer["roof_min"] - layer["ground"]) * 0.8).all()


def test_heights_match_the_truth(matched):
    ground = (matched["ground"] - matched["truth_ground_z"]).abs()
    full_height = ((matched["roof_max"] - matched["ground"]) - (matched["truth_top_z"] - matched["truth_ground_z"])).abs()
    assert (ground <= TOLERANCE).mean() >= SHARE
    assert (full_height <= TOLERANCE).mean() >= SHARE
    flat = matched["truth_roof_type"] == "flat"
    assert flat.sum() >= 10
    assert ((matched["height"] - matched["truth_height_m"]).abs()[flat] <= TOLERANCE).mean() >= SHARE


def test_roof_types_and_the_fit_of_the_roof_planes(matched):
    """Issue 14: roof type right for >= 90 % (the generator's pitched roofs are gables), median RMSE <= 0.15 m."""
    expected = matched["truth_roof_type"].map({"flat": "flat", "mansard": "mansard", "pitched": "gable"})
    assert expected.notna().all()
    assert (matched["roof_type"] == expected).mean() >= 0.90
    assert matched["rmse"].median() <= 0.15
    lod22 = matched["lod"] == "2.2"
    assert (matched["rmse"][lod22] <= 0.5).all()
    assert (matched["roof_planes"] >= 1).all()


def cityjson_solids(document: dict, lod: str):
    """(id, [(vertices (n, 3) metres, triangles)]) of each building's solids at ``lod``, triangulated here."""
    scale, translate = np.array(document["transform"]["scale"]), np.array(document["transform"]["translate"])
    vertices = np.array(document["vertices"]) * scale + translate
    for identifier, building in document["CityObjects"].items():
        for geometry in building["geometry"]:
            if geometry["lod"] != lod:
                continue
            solids = [geometry["boundaries"]] if geometry["type"] == "Solid" else geometry["boundaries"]
            yield identifier, [_triangulated(shells[0], vertices) for shells in solids]


def _triangulated(shell, vertices):
    triangles = []
    for face in shell:
        rings = [np.array(ring) for ring in face]
        points = vertices[np.concatenate(rings)]
        area = _newell(points[: len(rings[0])])
        drop = int(np.argmax(np.abs(area)))  # project on the plane the face is most parallel to
        plane = np.delete(points, drop, axis=1)
        starts = np.cumsum([0] + [len(r) for r in rings])
        polygon = shapely.Polygon(plane[: starts[1]], [plane[starts[i]:starts[i + 1]] for i in range(1, len(rings))])
        lookup = {tuple(p): i for i, p in enumerate(plane)}
        parts = shapely.get_parts(shapely.constrained_delaunay_triangles(polygon))
        local = [[lookup[tuple(c)] for c in shapely.get_coordinates(t)[:3]] for t in parts]
        index = np.concatenate(rings)[np.array(local)]
        # keep each face's own winding: flip the triangles that disagree with the ring's normal
        for tri in index:
            a, b, c = vertices[tri]
            triangles.append(tri if np.dot(np.cross(b - a, c - a), area) > 0 else tri[::-1])
    return vertices, np.array(triangles)


def _newell(ring: np.ndarray) -> np.ndarray:
    following = np.roll(ring, -1, axis=0)
    return np.array([np.sum((ring[:, 1] - following[:, 1]) * (ring[:, 2] + following[:, 2])),
                     np.sum((ring[:, 2] - following[:, 2]) * (ring[:, 0] + following[:, 0])),
                     np.sum((ring[:, 0] - following[:, 0]) * (ring[:, 1] + following[:, 1]))])


def test_cityjson_shells_are_closed_oriented_prisms(products, layer):
    document = json.loads((products / "buildings.city.json").read_text())
    areas = layer.set_index("id").geometry.area
    checked = 0
    for identifier, solids in cityjson_solids(document, "1.2"):
        for vertices, triangles in solids:
            mesh = trimesh.Trimesh(vertices, triangles)  # merges the shared vertices
            assert mesh.is_watertight and mesh.is_winding_consistent, identifier
            assert mesh.volume > 0, identifier  # outward normals
            prism = areas[identifier] * np.ptp(mesh.vertices[:, 2])
            assert mesh.volume == pytest.approx(prism, rel=1e-3), identifier
            checked += 1
    assert checked == len(layer)


def test_cityjson_lod22_shells_are_closed_and_oriented(products, layer):
    document = json.loads((products / "buildings.city.json").read_text())
    volumes = layer.set_index("id")["volume"]
    checked = 0
    for identifier, solids in cityjson_solids(document, "2.2"):
        (vertices, triangles), = solids
        mesh = trimesh.Trimesh(vertices, triangles)
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0, identifier
        assert mesh.volume == pytest.approx(volumes[identifier], rel=1e-3), identifier
        checked += 1
    assert checked == (layer["lod"] == "2.2").sum()


def test_cityjson_validates_against_the_2_0_schema(products):
    if not CITYJSON_SCHEMA.is_file():
        pytest.skip(f"CityJSON 2.0 schema not found at {CITYJSON_SCHEMA}")
    import jsonschema

    schema = json.loads(CITYJSON_SCHEMA.read_text())
    document = json.loads((products / "buildings.city.json").read_text())
    errors = [error.message[:200] for error in jsonschema.Draft7Validator(schema).iter_errors(document)]
    assert errors == []
    surfaces = {s["type"] for b in document["CityObjects"].values() for g in b["geometry"]
                for s in g.get("semantics", {}).get("surfaces", [])}
    assert surfaces == {"GroundSurface", "RoofSurface", "WallSurface"}


def test_the_cityjson_is_published_as_written(products, layer, tmp_path):
    """Issue 14's CityJSON download: the pipeline's file passes the catalog's gate and is stored byte for byte."""
    from gis.backends import open_backend
    from gis.catalog.service import Catalog

    written = products / "buildings.city.json"
    with Catalog(open_backend({"backend": "geopackage", "path": str(tmp_path / "city")}), crs="EPSG:2154") as catalog:
        result = catalog.publish(written, "buildings-cityjson", licence="ODbL-1.0", access="open", theme="buildings",
                                 title="Bâtiments 3D (CityJSON 2.0)")
        assert result.layer.kind == "cityjson" and result.version.features == len(layer)
        assert catalog.path("buildings-cityjson").read_bytes() == written.read_bytes()
        assert result.layer.extent == pytest.approx(tuple(layer.total_bounds), abs=0.01)


def test_a_rerun_with_the_same_inputs_does_nothing(district, products):
    before = {path: path.stat().st_mtime_ns for path in products.glob("buildings*")}
    result = run_buildings(district, products, district / "district.gpkg")
    assert result.exit_code == 0 and "nothing to do" in result.output, result.output
    assert {path: path.stat().st_mtime_ns for path in products.glob("buildings*")} == before


def test_two_dask_workers_give_the_same_buildings_as_one_process(district, products, layer, tmp_path):
    """Issue 14: reconstruction in chunks on 2 Dask workers, joined in the footprints' order, changes nothing."""
    result = run_buildings(district, tmp_path, district / "district.gpkg", "buildings_cadastre", "--workers", "2")
    assert result.exit_code == 0, result.output
    parallel = gpd.read_file(tmp_path / "buildings.gpkg", layer="buildings")
    pd.testing.assert_frame_equal(parallel.drop(columns="geometry"), layer.drop(columns="geometry"))
    assert parallel.geometry.geom_equals_exact(layer.geometry, tolerance=0).all()
    assert (tmp_path / "buildings.city.json").read_bytes() == (products / "buildings.city.json").read_bytes()


def test_tiles_are_valid_and_carry_the_layers_attributes(products, layer):
    from tiles.mesh import read_glb
    from tiles.tileset import check_tileset

    folder = products / "buildings_3dtiles"
    report = check_tileset(folder / "tileset.json")
    assert report.problems == [] and report.contents >= 1
    files = sorted(folder.glob("*.glb"))
    assert [v for v in validate_gltf(files) if v["errors"]] == []
    contents = [read_glb(path.read_bytes()) for path in files]
    read = pd.concat([c.table for c in contents]).set_index("id").sort_index()
    expected = pd.DataFrame(layer.drop(columns="geometry")).set_index("id").sort_index()
    pd.testing.assert_frame_equal(read[expected.columns], expected, check_dtype=False)
    for content in contents:  # each feature's triangles, welded, make a closed outward shell
        for feature in range(len(content.table)):
            mine = np.flatnonzero(content.feature_ids == feature)
            mesh = trimesh.Trimesh(content.positions[mine], np.arange(len(mine)).reshape(-1, 3))
            assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0


def test_lod13_splits_a_footprint_where_the_roof_steps():
    """Synthetic: a 30 x 12 m building, its west half 10 m high, its east half 16 m, ground at 35 m."""
    rng = np.random.default_rng(1)
    roof = rng.uniform([0, 0], [30, 12], (4000, 2))
    z = np.where(roof[:, 0] < 15, 45.0, 51.0) + rng.normal(0, 0.03, len(roof))
    ground = rng.uniform([-10, -10], [40, 22], (3000, 2))
    ground = ground[~((ground[:, 0] > -0.2) & (ground[:, 0] < 30.2) & (ground[:, 1] > -0.2) & (ground[:, 1] < 12.2))]
    xyz = np.concatenate([np.column_stack([roof, z]), np.column_stack([ground, np.full(len(ground), 35.0)])])
    classes = np.concatenate([np.full(len(roof), 6), np.full(len(ground), 2)]).astype(np.uint8)
    footprints = gpd.GeoDataFrame({"id": ["L"]}, geometry=[shapely.box(0, 0, 30, 12)], crs="EPSG:2154")
    (building,) = reconstruct(footprints, xyz, classes, "id", RoofOptions())
    assert len(building.lod12) == 1 and len(building.lod13) == 2
    parts = sorted(building.lod13, key=lambda p: p.polygon.centroid.x)
    assert [round(p.top - p.base, 1) for p in parts] == [10.0, 16.0]
    assert parts[0].polygon.bounds[2] == pytest.approx(15.0, abs=1.0)  # the split on the step, within a cell
    assert sum(p.polygon.area for p in parts) == pytest.approx(360.0, rel=1e-6)
    for part in parts:
        mesh = trimesh.Trimesh(*building_mesh([part]))
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert mesh.volume == pytest.approx(part.volume, rel=1e-6)


# --- bad input --------------------------------------------------------------------------------------


@pytest.fixture()
def few(district) -> gpd.GeoDataFrame:
    return gpd.read_file(district / "district.gpkg", layer="buildings_cadastre").iloc[:6]


def assert_refused(result, output: Path, *words: str) -> None:
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: ") and "Traceback" not in result.output
    for word in words:
        assert word in line, line
    assert not any(output.glob("buildings*")), list(output.iterdir())  # nothing written, nothing partial


def test_footprints_without_a_crs_are_refused(district, few, tmp_path):
    few.set_crs(None, allow_override=True).to_file(tmp_path / "nocrs.gpkg", layer="f")
    output = tmp_path / "out"
    assert_refused(run_buildings(district, output, tmp_path / "nocrs.gpkg", "f"), output, "no CRS", "nocrs.gpkg")


def test_an_empty_footprints_layer_is_refused(district, few, tmp_path):
    few.iloc[:0].to_file(tmp_path / "empty.gpkg", layer="f")
    output = tmp_path / "out"
    assert_refused(run_buildings(district, output, tmp_path / "empty.gpkg", "f"), output, "empty")


def test_a_self_intersecting_footprint_is_refused(district, few, tmp_path):
    x, y = few.geometry.iloc[0].centroid.coords[0]
    bowtie = shapely.Polygon([(x, y), (x + 10, y + 10), (x + 10, y), (x, y + 10)])
    broken = few.copy()
    broken.loc[broken.index[2], "geometry"] = bowtie
    broken.to_file(tmp_path / "bowtie.gpkg", layer="f")
    output = tmp_path / "out"
    assert_refused(run_buildings(district, output, tmp_path / "bowtie.gpkg", "f"), output, "invalid",
                   "Self-intersection")


@pytest.mark.slow
def test_reprojected_footprints_give_the_same_buildings_and_an_empty_one_stays_at_lod0(district, few, tmp_path):
    far = shapely.box(640000, 6850000, 640010, 6850010)  # no lidar there
    footprints = pd.concat([few, gpd.GeoDataFrame({"cadastre_id": ["EMPTY"]}, geometry=[far], crs=few.crs)])
    footprints.to_crs("EPSG:3857").to_file(tmp_path / "webmercator.gpkg", layer="f")
    footprints.to_file(tmp_path / "lambert.gpkg", layer="f")
    layers = {}
    for name in ("webmercator", "lambert"):
        result = run_buildings(district, tmp_path / name, tmp_path / f"{name}.gpkg", "f")
        assert result.exit_code == 0, result.output
        layers[name] = gpd.read_file(tmp_path / name / "buildings.gpkg").set_index("id")
    reprojected, reference = layers["webmercator"], layers["lambert"]
    assert reprojected.crs.to_epsg() == 2154
    built = reference.index[reference["lod"] != "0"]
    assert len(built) == 6
    assert np.allclose(reprojected.loc[built, "height"], reference.loc[built, "height"], atol=0.05)
    empty = reference.loc["EMPTY"]
    assert empty["lod"] == "0" and "0 roof points" in empty["lod_reason"]
    tileset_ids = json.loads((tmp_path / "lambert" / "buildings_3dtiles" / "tileset.json").read_text())
    assert tileset_ids["asset"]["extras"]["lutece"]["features"] == 6  # the LoD0 footprint has no shell to tile


def synthetic_building(roof_height, size=(20.0, 12.0), seed=2, options=RoofOptions()):
    """Roof points (10 per m2, 3 cm noise) of a roof ``roof_height(x, y)`` above ground at 35 m, and ground around."""
    rng = np.random.default_rng(seed)
    width, depth = size
    roof = rng.uniform([0, 0], [width, depth], (int(10 * width * depth), 2))
    z = 35.0 + roof_height(roof[:, 0], roof[:, 1]) + rng.normal(0, 0.03, len(roof))
    ground = rng.uniform([-10, -10], [width + 10, depth + 10], (3000, 2))
    outside = ~((ground[:, 0] > -0.2) & (ground[:, 0] < width + 0.2) & (ground[:, 1] > -0.2) & (ground[:, 1] < depth + 0.2))
    ground = ground[outside]
    xyz = np.concatenate([np.column_stack([roof, z]), np.column_stack([ground, np.full(len(ground), 35.0)])])
    classes = np.concatenate([np.full(len(roof), 6), np.full(len(ground), 2)]).astype(np.uint8)
    footprints = gpd.GeoDataFrame({"id": ["S"]}, geometry=[shapely.box(0, 0, width, depth)], crs="EPSG:2154")
    (building,) = reconstruct(footprints, xyz, classes, "id", options)
    return building


@pytest.mark.parametrize("kind, roof_height", [
    ("shed", lambda x, y: 10.0 + 0.3 * x),
    ("hip", lambda x, y: 10.0 + 0.6 * np.minimum(np.minimum(x, 20 - x), np.minimum(y, 12 - y))),
])
def test_lod22_shed_and_hip_roofs(kind, roof_height):
    building = synthetic_building(roof_height)
    assert building.attributes["roof_type"] == kind
    assert building.attributes["lod"] == "2.2"
    assert building.attributes["rmse"] < 0.1
    vertices, triangles = building.shell()
    mesh = trimesh.Trimesh(vertices, triangles)
    assert mesh.is_watertight and mesh.is_winding_consistent
    x, y = np.meshgrid(np.linspace(0, 20, 801)[:-1] + 0.0125, np.linspace(0, 12, 481)[:-1] + 0.0125)
    expected = 240.0 * roof_height(x, y).mean()  # the true volume above the ground, by a fine grid
    assert mesh.volume == pytest.approx(expected, rel=0.01)


def test_the_lod_option_stops_at_lod12():
    roof = lambda x, y: 10.0 + 0.6 * np.minimum(np.minimum(x, 20 - x), np.minimum(y, 12 - y))  # noqa: E731
    building = synthetic_building(roof, options=RoofOptions(lod=1.2))  # a number, as YAML reads 1.2
    assert building.attributes["lod"] == "1.2" and "not asked for" in building.attributes["lod_reason"]
    assert building.attributes["roof_type"] == "unknown" and building.lod22 is None
    assert building.attributes["volume"] == pytest.approx(240.0 * building.attributes["height"])
    with pytest.raises(ValueError, match="'lod'"):
        RoofOptions(lod="2.1")


def test_lidar_date_is_the_headers_creation_day(layer):
    """The sample's LAS header says 2026-01-01 (the generator's fixed day); its GPS time is not adjusted."""
    assert (layer["lidar_date"] == "2026-01-01").all()


def test_lidar_date_from_adjusted_standard_gps_time(tmp_path):
    """An adjusted standard GPS time names the flight's day, whatever the header's creation day says."""
    import datetime

    import laspy

    from pipelines.readers.las import survey_date

    flown = datetime.datetime(2021, 3, 2, 12, 0, tzinfo=datetime.timezone.utc)
    gps_epoch = datetime.datetime(1980, 1, 6, tzinfo=datetime.timezone.utc)
    seconds = (flown - gps_epoch).total_seconds() + 18 - 1e9  # 18 leap seconds since 1980 in 2021
    paths = []
    for name, offset in (("a.las", 0.0), ("b.las", 86400.0 * 2)):
        header = laspy.LasHeader(point_format=6, version="1.4")
        header.global_encoding.gps_time_type = laspy.header.GpsTimeType.STANDARD
        header.creation_date = datetime.date(2023, 5, 5)
        las = laspy.LasData(header)
        las.x, las.y, las.z = np.zeros(3), np.zeros(3), np.zeros(3)
        las.gps_time = seconds + offset + np.array([0.0, 60.0, 120.0])
        las.write(tmp_path / name)
        paths.append(tmp_path / name)
    assert survey_date(paths[:1]) == "2021-03-02"
    assert survey_date(paths) == "2021-03-02/2021-03-04"


def test_a_self_intersecting_lod22_shell_falls_back_to_lod13():
    """A shed roof whose plane runs 4 m below the ground at one wall: the LoD2.2 shell's roof crosses its
    floor (open3d finds the crossing triangles); the building stays at LoD1.3 and says why."""
    from pipelines.algorithms.shells import prism_mesh, self_intersections

    building = synthetic_building(lambda x, y: -4.0 + 1.0 * x)
    assert building.attributes["lod"] == "1.3", building.attributes["lod_reason"]
    assert "intersects itself" in building.attributes["lod_reason"]
    vertices, triangles = building.shell()
    assert self_intersections(vertices, triangles) == 0
    assert trimesh.Trimesh(vertices, triangles).is_watertight
    # the checker itself, on a mesh of two overlapping prisms and on one prism
    a, b = Prism(shapely.box(0, 0, 10, 10), 0, 5), Prism(shapely.box(5, 5, 15, 15), 2, 8)
    (va, fa), (vb, fb) = prism_mesh(a), prism_mesh(b)
    assert self_intersections(np.concatenate([va, vb]), np.concatenate([fa, fb + len(va)])) > 0
    assert self_intersections(va, fa) == 0


def test_footprint_checks_can_be_left_out():
    flat = lambda x, y: 10.0 + 0 * x  # noqa: E731
    checked = synthetic_building(flat).attributes
    assert checked["footprint_check"] == "ok" and checked["footprint_coverage"] >= 0.99
    assert checked["outside_points"] == 0 and not checked["footprint_shifted"]
    unchecked = synthetic_building(flat, options=RoofOptions(check_footprints=False)).attributes
    assert unchecked["footprint_check"].startswith("not checked") and np.isnan(unchecked["footprint_coverage"])
    assert unchecked["lod"] == checked["lod"] == "2.2"
