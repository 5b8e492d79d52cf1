"""Publishing a GeoDataFrame (the Python API): same gates, same table and same checksum as its GeoPackage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from catalog_products import assert_no_orphans, assert_stored, assert_unchanged, reference_checksum, write_product
from gis.errors import InputError, ProductError

OPEN = {"licence": "ODbL-1.0", "access": "open"}


def test_publish_a_geodataframe(catalog, cadastre):
    lineage = {"inputs": [{"path": "cadastre/buildings.gpkg", "licence": "ODbL-1.0"}]}
    result = catalog.publish(cadastre, "buildings", lineage=lineage, title="Bâtiments", note="from Python", **OPEN)
    layer, version = result.layer, result.version
    assert (layer.kind, layer.crs, layer.current_version, version.features) == ("vector", "EPSG:2154", 1, 107)
    assert layer.extent == pytest.approx(tuple(cadastre.total_bounds))
    assert version.lineage["inputs"] == lineage["inputs"]
    assert version.lineage["publication"] == {"product": "GeoDataFrame", "source_layer": None,
                                              "gates": {"features": 107, "fixed": 0, "dropped": 0}}
    frame = catalog.read("buildings")
    assert list(frame.columns) == ["cadastre_id", "commune", "geometry"] and frame.crs == cadastre.crs
    assert frame["cadastre_id"].tolist() == cadastre["cadastre_id"].tolist()
    assert frame.geometry.geom_equals_exact(cadastre.geometry, 0).all()
    assert_stored(catalog, version, cadastre)
    assert version.checksum == reference_checksum(cadastre)
    assert len(catalog.read("buildings", bbox=tuple(cadastre.iloc[0].geometry.bounds))) >= 1
    assert_no_orphans(catalog)


def test_a_frame_and_its_geopackage_give_the_same_version(catalog, cadastre, tmp_path):
    """Whatever the frame's geometry column is called, where it stands and how text is typed."""
    frame = cadastre.rename_geometry("geom")[["geom", "cadastre_id", "commune"]]
    frame["commune"] = frame["commune"].astype(object)
    frame.loc[3, "commune"] = None
    frame.index = frame.index + 1000
    product = write_product(frame, tmp_path / "buildings.gpkg")
    from_frame = catalog.publish(frame, "from-frame", **OPEN).version
    from_file = catalog.publish(product, "from-file", **OPEN).version
    assert from_frame.checksum == from_file.checksum
    read_frame, read_file = catalog.read("from-frame"), catalog.read("from-file")
    pd.testing.assert_frame_equal(read_frame, read_file)
    assert from_frame.checksum == reference_checksum(frame)  # the caller's frame as it is
    assert_stored(catalog, from_frame, frame)
    assert_stored(catalog, from_file, frame)


@pytest.mark.filterwarnings("ignore:Non-conformant content")  # GDAL reads back the zone it wrote
def test_attribute_types_survive_publication(catalog, cadastre):
    frame = cadastre.iloc[:4].copy()
    frame["floors"] = np.array([1, 2, 3, 4], dtype="int16")
    frame["parcel"] = np.array([10, 20, 30, 2**40], dtype="int64")
    frame["height"] = np.array([3.5, np.nan, 9.25, 12.0])
    frame["listed"] = [True, False, False, True]
    frame["name"] = ["Hôtel", None, "École", ""]
    frame["surveyed"] = pd.to_datetime(["2024-01-02T03:04:05.123", None, "1999-12-31", "2000-01-01"], format="ISO8601")
    frame["checked"] = frame["surveyed"].dt.tz_localize("Europe/Paris")
    frame["rooms"] = np.array([1, 2, 3, 4], dtype="int32")
    frame["area"] = np.array([1.5, 2.5, 3.5, 4.5], dtype="float32")
    frame["visits"] = pd.array([5, None, 7, 2**40], dtype="Int64")  # pandas' nullable types
    frame["open"] = pd.array([True, None, False, True], dtype="boolean")
    frame["score"] = pd.array([0.5, None, 1.5, 2.5], dtype="Float64")
    version = catalog.publish(frame, "typed", **OPEN).version
    back = catalog.read("typed")
    for name in ("visits", "open", "score"):  # numbers and booleans, not text
        assert not pd.api.types.is_string_dtype(back[name]), (name, back[name].dtype)
    assert back["visits"].astype("Int64").tolist() == [5, pd.NA, 7, 2**40]
    assert back["open"].astype("boolean").tolist() == [True, pd.NA, False, True]
    assert back["score"].astype("Float64").tolist() == [0.5, pd.NA, 1.5, 2.5]
    assert back["floors"].tolist() == [1, 2, 3, 4] and back["parcel"].tolist() == [10, 20, 30, 2**40]
    assert back["rooms"].tolist() == [1, 2, 3, 4] and back["area"].tolist() == [1.5, 2.5, 3.5, 4.5]
    assert back["height"].tolist()[::2] == [3.5, 9.25] and np.isnan(back["height"][1])
    assert back["listed"].tolist() == [True, False, False, True]
    assert back["name"].tolist()[::2] == ["Hôtel", "École"] and pd.isna(back["name"][1])
    assert pd.to_datetime(back["surveyed"]).tolist()[::2] == frame["surveyed"].tolist()[::2]
    assert pd.isna(back["surveyed"][1])
    checked = pd.to_datetime(back["checked"], utc=True)
    assert checked.tolist()[::2] == frame["checked"].dt.tz_convert("UTC").tolist()[::2]
    assert version.features == 4


def test_a_frame_in_another_crs_or_without_one_is_refused(catalog, cadastre):
    with pytest.raises(ProductError, match="the GeoDataFrame published as buildings: the product's CRS is "
                                           "EPSG:4326, not the declared EPSG:2154"):
        catalog.publish(cadastre.to_crs("EPSG:4326"), "buildings", **OPEN)
    with pytest.raises(ProductError, match="has no CRS"):
        catalog.publish(cadastre.set_crs(None, allow_override=True), "buildings", **OPEN)
    assert catalog.layers() == []
    assert_unchanged(catalog)


def with_bowties(cadastre):
    frame = cadastre.copy()
    bowtie = shapely.Polygon([(651100, 6861100), (651110, 6861110), (651110, 6861100), (651100, 6861110)])
    frame.loc[[3, 7], "geometry"] = bowtie
    frame.loc[9, "geometry"] = None
    return frame


def test_invalid_geometries_in_a_frame_follow_on_invalid(catalog, cadastre):
    frame = with_bowties(cadastre)
    with pytest.raises(ProductError, match=r"3 invalid or empty geometries, the first in feature 3 \(Self-inter"):
        catalog.publish(frame, "buildings", **OPEN)
    assert_unchanged(catalog)
    fixed = catalog.publish(frame, "buildings", on_invalid="fix", **OPEN).version
    assert fixed.lineage["publication"]["gates"] == {"features": 106, "fixed": 2, "dropped": 1}
    assert catalog.read("buildings").is_valid.all()
    skipped = catalog.publish(frame, "buildings", on_invalid="skip").version
    assert (skipped.features, skipped.lineage["publication"]["gates"]["dropped"]) == (104, 3)
    with pytest.raises(InputError, match="on_invalid='ignore'"):
        catalog.publish(frame, "buildings", on_invalid="ignore")
    assert len(catalog.events()) == 2


def test_a_refused_geometry_leaves_the_current_version(catalog, cadastre):
    """Under on_invalid="raise" the geometries are checked in a thread: the error still names the feature."""
    first = catalog.publish(cadastre, "buildings", **OPEN).version
    frame = with_bowties(cadastre)
    frame.index = frame.index + 1000
    for force in (False, True):
        with pytest.raises(ProductError, match=r"3 invalid or empty geometries, the first in feature 1003 "):
            catalog.publish(frame, "buildings", force=force)
        assert_unchanged(catalog, events_before=1)
    assert catalog.layer("buildings").current_version == 1
    assert_stored(catalog, first, cadastre)


def test_an_empty_layer_published_again_is_unchanged(catalog, cadastre):
    catalog.publish(cadastre.iloc[:0], "buildings", allow_empty=True, **OPEN)
    again = catalog.publish(cadastre.iloc[:0], "buildings", allow_empty=True)
    assert (again.event, again.version.number, len(catalog.events())) == (None, 1, 1)
    assert_no_orphans(catalog)
    assert catalog.publish(cadastre.iloc[:0], "buildings", allow_empty=True, force=True).version.number == 2


def test_an_empty_frame_is_refused_unless_allowed(catalog, cadastre):
    with pytest.raises(ProductError, match="no features; publish with --allow-empty"):
        catalog.publish(cadastre.iloc[:0], "buildings", **OPEN)
    assert_unchanged(catalog)
    result = catalog.publish(cadastre.iloc[:0], "buildings", allow_empty=True, **OPEN)
    assert result.version.features == 0 and len(catalog.read("buildings")) == 0


def test_text_that_is_not_utf8_is_refused_naming_column_and_feature(catalog, cadastre):
    frame = cadastre.astype({"commune": object})  # pandas' Arrow-backed text cannot hold what follows
    frame.loc[5, "commune"] = "Paris\udce9"  # a lone surrogate: bytes decoded with errors="surrogateescape"
    with pytest.raises(ProductError) as refused:
        catalog.publish(frame, "buildings", **OPEN)
    message = str(refused.value)
    assert message == ("the GeoDataFrame published as buildings: attribute 'commune' of feature 5 is not UTF-8; "
                       "re-encode the attributes in UTF-8")
    frame = cadastre.copy()
    frame.columns = pd.Index(["commune\udce9" if name == "commune" else name for name in frame.columns], dtype=object)
    with pytest.raises(ProductError, match="column name 'commune.udce9' is not UTF-8"):
        catalog.publish(frame, "buildings", **OPEN)
    assert_unchanged(catalog)


def test_what_is_not_one_geometry_column_is_refused(catalog, cadastre):
    with pytest.raises(ProductError, match="has no geometry column"):
        catalog.publish(pd.DataFrame(cadastre.drop(columns="geometry")), "buildings", **OPEN)
    twice = cadastre.assign(centre=cadastre.centroid)
    with pytest.raises(ProductError, match=r"more geometry columns than 'geometry' \(centre\)"):
        catalog.publish(twice, "buildings", **OPEN)
    with pytest.raises(InputError, match="source_layer chooses a layer of a GeoPackage"):
        catalog.publish(cadastre, "buildings", source_layer="buildings_cadastre", **OPEN)
    with pytest.raises(InputError, match="a GeoDataFrame is a vector product, not raster"):
        catalog.publish(cadastre, "buildings", kind="raster", **OPEN)
    assert_unchanged(catalog)


def test_a_frame_cannot_replace_a_layer_of_another_kind(catalog, cadastre, cog):
    catalog.publish(cog, "dtm", licence="etalab-2.0", access="open")
    with pytest.raises(InputError, match="layer dtm is a raster layer; the GeoDataFrame is a vector product"):
        catalog.publish(cadastre, "dtm")
    assert len(catalog.events()) == 1
