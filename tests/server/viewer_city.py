"""The viewer tests' city: one layer of every kind the server publishes, made from the committed sample district.

=================  ==================  ======  ===============================================
layer              kind                access  from
=================  ==================  ======  ===============================================
buildings          vector (polygons)   open    truth.gpkg footprints (ODbL: share-alike)
streets            vector (lines)      open    district.gpkg streets
trees              vector (points)     shared  truth.gpkg trees (a partner's key opens it)
dtm                raster              open    truth-dtm.tif (as a COG)
terrain-3d         pointcloud-3dtiles  open    district.laz, ground and water (lutece tiles pointcloud)
buildings-3d       mesh-3dtiles        open    truth footprints extruded from ground to eave,
                                               their truth attributes per building
town-hall          mesh-3dtiles        open    the town hall's indoor plans (rooms, doors) by
                   (storeys)                   lutece tiles interior: one child tile per storey
=================  ==================  ======  ===============================================
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_LAYER = "trees"
BUILDING_ATTRIBUTES = ["building_id", "kind", "roof_type", "height_m", "area_m2"]


def building_tileset(district: Path, out: Path) -> Path:
    """The truth footprints as prisms (ground to eave), one feature per building, as mesh 3D Tiles."""
    import geopandas as gpd
    import pyproj

    from tiles.geo import HeightModel, Placement
    from tiles.mesh import FeatureMeshes, write_mesh_tileset

    footprints = gpd.read_file(district / "truth.gpkg", layer="footprints", engine="pyogrio")
    vertices, faces, owner = _prisms(footprints.geometry, footprints["ground_z"],
                                     footprints["eave_z"] - footprints["ground_z"])
    meshes = FeatureMeshes(vertices, faces, owner, footprints[BUILDING_ATTRIBUTES].reset_index(drop=True))
    write_mesh_tileset(meshes, Placement(pyproj.CRS("EPSG:2154"), HeightModel.resolve()), out, max_features=40,
                       metadata={"product": "buildings"})
    return out


def _prisms(polygons, bases, heights):
    """Vertices, faces and the owning row of each face of polygons extruded from ``bases`` by ``heights``."""
    import numpy as np
    import trimesh

    vertices, faces, owner, offset = [], [], [], 0
    for index, (polygon, base, height) in enumerate(zip(polygons, bases, heights)):
        prism = trimesh.creation.extrude_polygon(polygon, height)
        vertices.append(prism.vertices + [0.0, 0.0, base])
        faces.append(prism.faces + offset)
        owner.append(np.full(len(prism.faces), index))
        offset += len(prism.vertices)
    return np.concatenate(vertices), np.concatenate(faces), np.concatenate(owner)


def _lutece(*args: str) -> subprocess.Popen:
    """``lutece ARGS`` in a subprocess (the project's own code), its output kept for an error message."""
    return subprocess.Popen([sys.executable, "-m", "gis", "-q", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def _finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=300)
    if process.returncode != 0:
        raise AssertionError(f"{' '.join(process.args[3:])} failed: {output.decode(errors='replace')}")


def dtm_cog(district: Path, out: Path) -> Path:
    """The truth DTM as the Cloud-Optimised GeoTIFF the catalog wants (GDAL's COG driver, with overviews)."""
    import rasterio.shutil

    rasterio.shutil.copy(district / "truth-dtm.tif", out, driver="COG")
    return out


def publish_viewer_city(catalog, district: Path, folder: Path) -> None:
    """Publish the layers of the table above into ``catalog``."""
    import geopandas as gpd

    def frame(file: str, layer: str):
        return gpd.read_file(district / file, layer=layer, engine="pyogrio")

    # the two tilers run beside each other (and beside the publications below)
    points = _lutece("tiles", "pointcloud", str(district / "district.laz"), str(folder / "terrain-3d"),
                     "--product", "terrain")
    interior = _lutece("tiles", "interior", str(district / "hotel-de-ville-indoor.geojson"),
                       str(folder / "town-hall"))

    catalog.publish(frame("truth.gpkg", "footprints"), "buildings", licence="ODbL-1.0", access="open",
                    title="Emprises des bâtiments")
    catalog.publish(frame("district.gpkg", "streets"), "streets", licence="etalab-2.0", access="open",
                    title="Rues")
    catalog.publish(frame("truth.gpkg", "trees"), SHARED_LAYER, licence="restricted", access="shared",
                    title="Arbres (partenaires)")
    catalog.publish(dtm_cog(district, folder / "dtm.tif"), "dtm", licence="etalab-2.0", access="open",
                    title="Modèle numérique de terrain")
    _finish(points)
    catalog.publish(folder / "terrain-3d", "terrain-3d", kind="pointcloud-3dtiles",
                    licence="etalab-2.0", access="open", title="Terrain en 3D")
    catalog.publish(building_tileset(district, folder / "buildings-3d"), "buildings-3d", kind="mesh-3dtiles",
                    licence="etalab-2.0", access="open", title="Bâtiments en 3D")
    _finish(interior)
    catalog.publish(folder / "town-hall", "town-hall", kind="mesh-3dtiles", licence="etalab-2.0", access="open",
                    title="Hôtel de ville : intérieur par étage")
